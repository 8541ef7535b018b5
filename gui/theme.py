"""Dark plugin-like theme: colours, fonts and the application style sheet."""

from __future__ import annotations

BG = "#14161b"
PANEL = "#1c1f26"
CARD = "#242833"
CARD_EDGE = "#313645"
TEXT = "#e4e6eb"
DIM = "#8b919e"
ACCENT = "#f0a030"
A_COLOUR = "#ff7a59"  # target (A)
B_COLOUR = "#4fc3f7"  # matched (B)
DRY_COLOUR = "#9e9e9e"
OK = "#5cd68a"
WARN = "#f2c94c"
BAD = "#ff5c5c"

#: a panel's small upper-case caption ("AUDIO SET-UP", "LEVELS", ...)
CAPTION_STYLE = f"color: {DIM}; font-size: 8pt; letter-spacing: 1px;"

#: one colour per effect of the default vocabulary (others get ACCENT)
EFFECT_COLOURS: dict[str, str] = {
    "Compressor": "#f0a030",
    "Distortion": "#ff5c5c",
    "PeakFilter": "#f2c94c",
    "Chorus": "#3fd0c9",
    "Phaser": "#b08cff",
    "Delay": "#4fc3f7",
    "Reverb": "#5cd68a",
}


def effect_colour(name: str) -> str:
    """The card colour of effect `name` (hex)."""
    return EFFECT_COLOURS.get(name, ACCENT)


STYLE_SHEET = f"""
QWidget {{ background: {BG}; color: {TEXT}; font-size: 10pt; }}
QMainWindow::separator {{ background: {CARD_EDGE}; width: 1px; height: 1px; }}
QFrame#panel {{ background: {PANEL}; border: 1px solid {CARD_EDGE}; border-radius: 8px; }}
QLabel {{ background: transparent; }}
QLabel#title {{ font-size: 11pt; font-weight: 600; color: {TEXT}; }}
QLabel#dim {{ color: {DIM}; }}
QLabel#error {{ color: {BAD}; background: #2a1618; border: 1px solid #5a2a2e; border-radius: 6px; padding: 6px; }}
QLabel#big {{ font-size: 16pt; font-weight: 600; }}
QPushButton {{ background: {CARD}; border: 1px solid {CARD_EDGE}; border-radius: 6px; padding: 5px 10px; }}
QPushButton:hover {{ border-color: {DIM}; }}
QPushButton:pressed {{ background: #2d3240; }}
QPushButton:checked {{ background: #3a3220; border-color: {ACCENT}; color: {ACCENT}; }}
QPushButton:disabled {{ color: #555b66; border-color: #262a33; }}
QPushButton#start {{ background: #1f3a2a; border-color: {OK}; color: {OK}; font-weight: 600; padding: 8px; }}
QPushButton#start:checked {{ background: #3a1f22; border-color: {BAD}; color: {BAD}; }}
QPushButton#abA:checked {{ background: #3a2219; border-color: {A_COLOUR}; color: {A_COLOUR}; }}
QPushButton#abB:checked {{ background: #17303a; border-color: {B_COLOUR}; color: {B_COLOUR}; }}
QPushButton#abDry:checked {{ background: #2a2a2a; border-color: {DRY_COLOUR}; color: {TEXT}; }}
QPushButton#ab, QPushButton#abA, QPushButton#abB, QPushButton#abDry {{ font-size: 15pt; font-weight: 700;
    min-height: 46px; min-width: 64px; border-radius: 8px; }}
QPushButton#alt {{ text-align: left; color: {DIM}; }}
QPushButton#alt:hover {{ color: {TEXT}; }}
QComboBox, QSpinBox, QLineEdit {{ background: {CARD}; border: 1px solid {CARD_EDGE}; border-radius: 5px;
    padding: 3px 6px; selection-background-color: #3a4255; }}
QComboBox QAbstractItemView {{ background: {CARD}; border: 1px solid {CARD_EDGE}; }}
QProgressBar {{ background: {CARD}; border: 1px solid {CARD_EDGE}; border-radius: 5px; text-align: center;
    height: 14px; }}
QProgressBar::chunk {{ background: {B_COLOUR}; border-radius: 4px; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {CARD_EDGE}; color: {DIM}; }}
QStatusBar QLabel {{ color: {DIM}; padding: 0 8px; }}
QToolBar {{ background: {PANEL}; border: none; border-bottom: 1px solid {CARD_EDGE}; spacing: 4px; padding: 3px; }}
QToolButton {{ background: transparent; border: 1px solid transparent; border-radius: 5px; padding: 4px 8px; }}
QToolButton:hover {{ border-color: {CARD_EDGE}; background: {CARD}; }}
QScrollArea {{ border: none; background: transparent; }}
QScrollArea > QWidget > QWidget {{ background: transparent; }}
QToolTip {{ background: {CARD}; color: {TEXT}; border: 1px solid {CARD_EDGE}; }}
QMenu {{ background: {PANEL}; border: 1px solid {CARD_EDGE}; }}
QMenu::item:selected {{ background: {CARD}; }}
QMenuBar {{ background: {PANEL}; }}
QMenuBar::item:selected {{ background: {CARD}; }}
"""


def configure_pyqtgraph() -> None:
    """Dark pyqtgraph defaults (call before creating plots)."""
    import pyqtgraph as pg

    pg.setConfigOptions(background=BG, foreground=DIM, antialias=False, imageAxisOrder="row-major")
