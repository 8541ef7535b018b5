"""Start and stop a JACK server with the dummy driver, for tests, benchmarks and demos without sound hardware.

    from realtime.jack import JackDummyServer
    with JackDummyServer(rate=48000, period=256) as server:   # unique server name, waits until it is up
        engine = LiveEngine(EngineConfig(model_path=..., input_device=server.device, output_device=server.device))
        ...

The server runs `jackd -R -P 75 -n NAME -d dummy -r RATE -p PERIOD` (Debian package `jackd2`, installed by
scripts/install.sh): real-time scheduled, as a JACK server with sound hardware runs and as the engine's callback
thread is (realtime.sched), where this process may ask for it; elsewhere, or when such a server does not come up,
`--no-realtime` (`server.realtime` says which); rate and period are checked first (the engine's ranges: a 1 Hz server never answers). No
server is left behind: a failed or interrupted start stops it, `stop()` escalates SIGTERM to SIGKILL and waits,
and, through util-linux's `setpriv --pdeathsig KILL`, Linux kills it when the thread that started it ends (so
start it from a thread that outlives it, normally the main thread). Entering the context sets
`JACK_DEFAULT_SERVER=NAME` in this process's environment (and restores it on exit) so that PortAudio's JACK host
API connects to this server, and re-initialises PortAudio so that the JACK host API appears among sounddevice's
devices (PortAudio lists it only when a server was reachable at initialisation). `server.device` is the index of the JACK device ("system", 2 in / 2 out).

GUI tests use it the same way: start the server in a fixture, then point the app's EngineConfig at
`server.device`. Each server gets a fresh name, so parallel runs do not collide; the dummy driver runs its
clients at real-time pace with silent capture ports. Do not re-initialise PortAudio (this helper does it on
start/stop) while a stream of another server is open.

Engine processes (realtime.remote.RemoteEngine) work with it unchanged: a process spawned after `start()`
inherits `JACK_DEFAULT_SERVER` and initialises PortAudio when it imports sounddevice, so it sees this server and
lists the devices in the same order (the same `server.device` index). Stop engines before the server: an engine
process closes PortAudio (Pa_Terminate) only while its stream is healthy and otherwise ends with os._exit, so a
server that died under it cannot abort it on the way out; the parent process never opened a stream, but its own
PortAudio still listed the server's devices, hence `stop()`'s shutdown order above.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Self

from fxmatch.errors import FxmatchInputError

log = logging.getLogger("fxmatch.realtime.jack")

JACK_HOSTAPI = "JACK Audio Connection Kit"


class JackUnavailable(FxmatchInputError):
    """jackd is missing or the server did not start."""


REGISTRY = Path("/dev/shm/jack-shm-registry")
_REGISTRY_MAGIC = 0x4A41434B  # "JACK"
_MAX_SERVERS = 8


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def reap_stale_servers(registry: Path = REGISTRY) -> list[str]:
    """Free the JACK shm registry's server slots of servers whose process is gone; returns their names.

    JACK2 keeps at most 8 servers in /dev/shm/jack-shm-registry and frees a slot only when its server shuts down
    cleanly: every jackd killed with SIGKILL (the server-loss tests do that; so does an OOM kill or an aborted CI
    job) leaks one, and after 8 no server starts ("Too many servers already active"). Layout (JACK 1.9.x, POSIX
    shm): header uint32 magic, uint16 protocol (+2 pad), int32 type, uint32 size, uint32 hdr_len, uint32
    entry_len, then 8 server slots of (hdr_len - 24) / 8 bytes: int32 pid, char name[] ("jack-UID:NAME:"). A slot
    is zeroed (what jackd does on a clean exit) only when its pid no longer exists; the leftover /dev/shm files of
    that server are removed too. Unknown layouts are left alone.
    """
    import struct

    try:
        with open(registry, "r+b") as f:
            head = f.read(24)
            if len(head) < 24:
                return []
            magic, _proto, _type, _size, hdr_len, _entry = struct.unpack("<IHxxiIII", head)
            slot = (hdr_len - 24) // _MAX_SERVERS
            if magic != _REGISTRY_MAGIC or slot < 8 or 24 + slot * _MAX_SERVERS != hdr_len:
                return []
            f.seek(24)
            table = f.read(slot * _MAX_SERVERS)
            reaped = []
            for i in range(_MAX_SERVERS):
                entry = table[i * slot : (i + 1) * slot]
                pid = struct.unpack_from("<i", entry)[0]
                if pid <= 0 or _pid_alive(pid):
                    continue
                label = entry[4:].split(b"\0")[0].decode(errors="replace")
                f.seek(24 + i * slot)
                f.write(b"\0" * slot)
                reaped.append(label.split(":")[1] if label.count(":") >= 2 else label)
    except OSError:
        return []
    for name in reaped:
        if not name:
            continue
        for leftover in registry.parent.glob(f"jack_*{name}_*"):  # jack_NAME_0_0, jack_sem.0_NAME_client
            leftover.unlink(missing_ok=True)
        log.info("freed the JACK registry slot of dead server %r", name)
    reap_orphan_files(registry.parent)
    return reaped


_OWN_SERVER = re.compile(r"^jack_(?:sem\.\d+_)?(fxmatch-(\d+)-[0-9a-f]{8})_")


def _running_commands() -> str:
    """The command lines of every process this user can see, NUL-joined (from /proc)."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return "\0".join(lines)


def reap_orphan_files(shm: Path = REGISTRY.parent) -> list[str]:
    """Remove the /dev/shm files of this project's JACK servers (named fxmatch-PID-HEX by JackDummyServer) whose
    owner process PID is gone and whose jackd no longer runs; returns the names. A server that did not shut down
    cleanly after its registry slot was freed leaves them behind, and many of them slow later servers down."""
    found: dict[str, list[Path]] = {}
    try:
        entries = list(shm.iterdir())
    except OSError:
        return []
    for path in entries:
        m = _OWN_SERVER.match(path.name)
        if m and not _pid_alive(int(m.group(2))):
            found.setdefault(m.group(1), []).append(path)
    if not found:
        return []
    running = _running_commands()
    reaped = []
    for name, paths in found.items():
        if name in running:
            continue
        for path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                continue
        reaped.append(name)
    if reaped:
        log.info("removed the shm files of %d dead JACK servers", len(reaped))
    return reaped


def reinitialise_portaudio() -> None:
    """Re-initialise PortAudio so that its device list reflects the JACK servers reachable now (no stream open)."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


def jack_device(kind: str | None = None) -> int | None:
    """Index of the first sounddevice device of the JACK host API (None when PortAudio lists none)."""
    import sounddevice as sd

    for i, api in enumerate(sd.query_hostapis()):
        if api["name"] == JACK_HOSTAPI and api["devices"]:
            for d in api["devices"]:
                info = sd.query_devices(d)
                if kind is None or info[f"max_{kind}_channels"] > 0:
                    return int(d)
    return None


#: seconds a stopping server gets between SIGTERM and SIGKILL
TERM_GRACE_S = 3.0


def _die_with_parent() -> list[str]:
    """A command prefix that makes Linux SIGKILL the server when the thread that started it ends (util-linux's
    setpriv --pdeathsig; kept across exec); [] where setpriv is missing (then stop() is the only guard)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def end_process(proc: subprocess.Popen, grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM `proc`, SIGKILL its process group when it is still there after `grace_s`, and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.info("jackd (pid %d) ignored SIGTERM for %.0f s: killing it", proc.pid, grace_s)
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session (start_new_session): only jackd and its kin
            except (ProcessLookupError, PermissionError):
                proc.kill()
    proc.wait()


class JackDummyServer:
    """A `jackd` dummy-driver server (context manager): `rate` Hz, `period` frames, unique `name`."""

    def __init__(self, rate: int = 48000, period: int = 256, name: str | None = None, channels: int = 2,
                 timeout_s: float = 10.0):
        from realtime.config import MAX_FRAMES, MAX_RATE, MIN_FRAMES, MIN_RATE

        if isinstance(rate, bool) or not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
            raise FxmatchInputError(f"JACK dummy server: the rate must be an integer in [{MIN_RATE}, {MAX_RATE}] Hz, "
                                    f"got {rate!r}")
        if isinstance(period, bool) or not isinstance(period, int) or not MIN_FRAMES <= period <= MAX_FRAMES:
            raise FxmatchInputError(f"JACK dummy server: the period must be an integer in [{MIN_FRAMES}, "
                                    f"{MAX_FRAMES}] frames, got {period!r}")
        self.rate = rate
        self.period = period
        self.name = name or f"fxmatch-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.channels = int(channels)
        self.timeout_s = float(timeout_s)
        self.process: subprocess.Popen | None = None
        self.device: int | None = None
        self._log: tempfile._TemporaryFileWrapper | None = None
        self._saved_env: str | None = None
        self.realtime = False  # whether the server runs real-time scheduled (-R)

    @staticmethod
    def jackd_path() -> str:
        """Path of jackd, or JackUnavailable naming the package to install."""
        path = shutil.which("jackd")
        if not path:
            raise JackUnavailable("jackd is not installed (Debian/Ubuntu: apt-get install jackd2, or scripts/install.sh)")
        return path

    def _server_up(self, timeout_s: float = 5.0) -> bool:
        env = dict(os.environ, JACK_DEFAULT_SERVER=self.name, JACK_NO_START_SERVER="1")
        lsp = shutil.which("jack_lsp")
        if lsp:
            try:
                r = subprocess.run([lsp], check=False, env=env, capture_output=True, text=True,
                                   timeout=max(0.2, timeout_s))
            except subprocess.TimeoutExpired:  # a server that does not answer (e.g. stuck in its first cycle)
                return False
            return r.returncode == 0 and "system:playback_1" in r.stdout
        # without jack_lsp: the server's socket appears under /dev/shm or the tmp dir
        return any(Path(d).glob(f"jack_{self.name}*") for d in ("/dev/shm", tempfile.gettempdir()))

    def start(self) -> JackDummyServer:
        """Start the server and wait until clients can connect; JackUnavailable with its log when it fails.

        A server that fails to come up (or any error or interrupt while waiting) is stopped before this returns:
        no jackd is left behind. The server also gets SIGKILL if this process dies without stopping it (Linux).
        """
        if self.process is not None:
            return self
        jackd = self.jackd_path()
        from realtime.sched import jackd_realtime_args

        reap_stale_servers()
        flags, realtime = jackd_realtime_args()
        try:
            try:
                self._start(jackd, flags)
                self.realtime = realtime
            except JackUnavailable:
                if not realtime:
                    raise
                log.info("a real-time jackd did not start; trying --no-realtime")
                self.stop()
                self._start(jackd, ["--no-realtime"])
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, jackd: str, flags: list[str]) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix="jackd-", suffix=".log", delete=False)  # noqa: SIM115 - lives as long as the server
        env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1", JACK_NO_START_SERVER="1")
        cmd = [*_die_with_parent(), jackd, *flags, "-n", self.name, "-d", "dummy", "-r", str(self.rate), "-p", str(self.period),
               "-C", str(self.channels), "-P", str(self.channels)]
        log.info("starting %s", " ".join(cmd))
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, start_new_session=True)
        deadline = time.monotonic() + self.timeout_s
        up = False
        while not up and self.process.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            up = self._server_up(min(5.0, left))
            if not up:
                time.sleep(0.05)
        if not up:
            lines = [line.strip() for line in self._read_log().splitlines() if line.strip()]
            said = " / ".join(lines[-3:])
            why = f"exited with code {self.process.returncode}" if self.process.poll() is not None else \
                f"did not answer within {self.timeout_s:g} s"
            raise JackUnavailable(f"jackd dummy server {self.name!r} ({self.rate} Hz, {self.period} frames) {why}: "
                                  f"{said[-300:] or 'no output'}")
        self._saved_env = os.environ.get("JACK_DEFAULT_SERVER")
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        reinitialise_portaudio()
        self.device = jack_device()
        if self.device is None:
            raise JackUnavailable("PortAudio does not list the JACK host API (libportaudio2 built without JACK?)")

    def _read_log(self) -> str:
        if self._log is None:
            return ""
        try:
            return Path(self._log.name).read_text(errors="replace").strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server and restore the environment; idempotent. The server is gone when this returns.

        SIGTERM, then SIGKILL to its process group after `TERM_GRACE_S` (a server stuck in a cycle ignores
        SIGTERM), then wait for it. PortAudio is shut down while the server still runs (its JACK host API aborts the
        process when it closes its client after the server died) and initialised again afterwards.
        """
        proc, self.process = self.process, None
        if proc is not None:
            terminated = False
            if self.device is not None:
                try:
                    import sounddevice as sd

                    sd._terminate()
                    terminated = True
                except Exception:  # best effort
                    log.debug("PortAudio shutdown before jackd stop failed", exc_info=True)
            end_process(proc, TERM_GRACE_S)
            if "JACK_DEFAULT_SERVER" in os.environ and os.environ["JACK_DEFAULT_SERVER"] == self.name:
                if self._saved_env is None:
                    os.environ.pop("JACK_DEFAULT_SERVER", None)
                else:
                    os.environ["JACK_DEFAULT_SERVER"] = self._saved_env
            if terminated:
                import sounddevice as sd

                sd._initialize()
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None
        self.device = None
        self._saved_env = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
