"""A found chain offered with Keep / Discard (gui.jobs.Offer), on a stand-in panel."""

from __future__ import annotations

from gui.jobs import Offer


class Note:
    """A QLabel stand-in: the text last set."""

    def __init__(self) -> None:
        self.text = ""

    def setText(self, text: str) -> None:  # Qt's name
        self.text = text


class Panel:
    """A task panel stand-in: whether Keep / Discard show, and its note."""

    def __init__(self) -> None:
        self.offered = False
        self.note = Note()

    def set_offer(self, on: bool) -> None:
        self.offered = on


def test_discard_goes_back_to_what_played_before_and_says_so():
    panel, restored = Panel(), []
    offer = Offer(panel)
    offer.open("the estimate")
    assert panel.offered
    offer.discard(restored.append)
    assert restored == ["the estimate"] and not panel.offered and offer.before is None
    assert panel.note.text == "discarded: back to what played before"


def test_keep_forgets_what_played_before_so_discard_then_does_nothing():
    panel, restored = Panel(), []
    offer = Offer(panel)
    offer.open("the estimate")
    offer.keep()
    assert not panel.offered
    offer.discard(restored.append)
    assert restored == [] and panel.note.text == ""


def test_keep_and_discard_show_again_after_the_job_only_while_an_offer_is_open():
    panel = Panel()
    offer = Offer(panel)
    offer.job_finished()
    assert not panel.offered
    offer.open("frozen chain")
    panel.set_offer(False)  # the panel hid them while busy
    offer.job_finished()
    assert panel.offered
