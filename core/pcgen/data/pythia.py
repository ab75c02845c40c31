"""JetNet-like jets made with Pythia 8 and FastJet: seeded, sharded, parallel, resumable.

The recipe follows JetNet's (see ``DESIGN.md``, "What JetNet is"):

- 13 TeV pp, Pythia 8 Monash 2013 tune (``Tune:pp = 14``) with multi-parton interactions on.
- Hard process by jet type: ``t`` tt-bar with hadronic W decays; ``g`` QCD 2->2 with two outgoing
  gluons; ``q`` QCD 2->2 with outgoing u/d/s quarks (``HardQCD:nQuarkNew = 3``); ``w`` / ``z``
  W/Z + parton with hadronic boson decays (pure Z, no photon).
- Hard-process pT window :data:`PTHAT_WINDOW` = 990-1010 GeV, JetNet's 1 TeV +- 1 %; for tt-bar and
  W/Z + jet it is the pT of the top / boson, for QCD 2->2 that of the outgoing partons.
- Visible final-state particles (``isFinal() and isVisible()``), optionally passed through the
  detector-like step (:class:`pcgen.config.DetectorConfig`: drop particles with |eta| >= max_abs_eta or
  pT < min_pt) before clustering with anti-kT, R = 0.8 (E-scheme).
- Jets are kept when |eta| < 2.5, the measured pT lies in [min_jet_pt, max_jet_pt], and the jet axis
  lies within Delta R < 0.8 of a hard-process particle of the requested kind (top, W, Z, gluon or
  u/d/s quark, read from Pythia's process record). Every such jet of an event is kept (a tt-bar event
  usually gives two top jets; a W + jet event only the W jet).
- Per jet, the leading N constituents by pT as (eta - eta_jet, phi - phi_jet wrapped to [-pi, pi),
  pT / pT_jet), zero-padded, with a mask; jet features (pT, eta, mass, num_particles) where pT, eta
  and mass are those of the whole jet and num_particles = min(constituents, N), as JetNet clips it.

A job of ``num_jets`` is cut into shards of :data:`SHARD_SIZE` jets; shard ``k`` runs its own Pythia
seeded from ``(seed, jet_type, k)``, so the data do not depend on how many processes made them.
Shards are files in ``<out stem>.shards/`` next to the merged file; finished shards are reused, so an
interrupted job resumes, and separate machines can each make some shards (``shards=[...]``).
Parallel generation forks worker processes on Linux and spawns them elsewhere (where a script that
calls it must guard its entry point with ``if __name__ == "__main__":``).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import queue as queue_module
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pcgen.data.jet_config import JetDataConfig
from pcgen.data.pointclouds import JET_FEATURES, JET_GLOBALS, PointClouds
from pcgen.data.store import DataError, num_clouds, read_meta, read_pointclouds, write_pointclouds
from pcgen.safe_io import check_output_path

RECIPE_VERSION = 1
"""Bumped whenever the recipe below changes the data; part of every fingerprint."""
PTHAT_WINDOW = (990.0, 1010.0)
"""Hard-process pT window in GeV (``PhaseSpace:pTHatMin`` / ``pTHatMax``): JetNet's 1 TeV +- 1 %."""
JET_RADIUS = 0.8
MAX_JET_ABS_ETA = 2.5
MATCH_RADIUS = 0.8
SHARD_SIZE = 500
"""Jets per shard: the unit of seeding, parallelism and resumption."""
MAX_EVENT_BATCH = 25
"""Events clustered together in one FastJet call."""
MAX_PYTHIA_SEED = 900_000_000
MAX_EMPTY_EVENTS = 2000
"""A shard gives up when this many events in a row yield no selected jet (cuts exclude everything)."""

COMMON_SETTINGS = (
    "Tune:pp = 14",  # Monash 2013; first, since a tune resets parameters set before it
    "Beams:idA = 2212",
    "Beams:idB = 2212",
    "Beams:eCM = 13000.",
    f"PhaseSpace:pTHatMin = {PTHAT_WINDOW[0]}",
    f"PhaseSpace:pTHatMax = {PTHAT_WINDOW[1]}",
    "PartonLevel:MPI = on",
    "Print:quiet = on",
)
PROCESS_SETTINGS: dict[str, tuple[str, ...]] = {
    "t": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off", "24:onIfAny = 1 2 3 4 5"),
    "g": ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on"),
    "q": ("HardQCD:gg2qqbar = on", "HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on", "HardQCD:nQuarkNew = 3"),
    "w": (
        "WeakBosonAndParton:qqbar2Wg = on",
        "WeakBosonAndParton:qg2Wq = on",
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
    ),
    "z": (
        "WeakBosonAndParton:qqbar2gmZg = on",
        "WeakBosonAndParton:qg2gmZq = on",
        "WeakZ0:gmZmode = 2",
        "23:onMode = off",
        "23:onIfAny = 1 2 3 4 5",
    ),
}
MATCH_IDS: dict[str, frozenset[int]] = {
    "t": frozenset({6}),
    "g": frozenset({21}),
    "q": frozenset({1, 2, 3}),
    "w": frozenset({24}),
    "z": frozenset({23}),
}
"""|PDG id| of the hard-process particles (status +-22 or +-23) a kept jet must lie near."""


# ------------------------------------------------------------------------------------------------
# Settings, seeds and paths
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenSettings:
    """Everything that changes the generated data (plus the shard size, which changes seeding)."""

    jet_type: str
    num_particles: int
    num_jets: int
    seed: int
    min_jet_pt: float
    max_jet_pt: float
    detector: bool
    detector_max_abs_eta: float | None
    detector_min_pt: float | None
    shard_size: int = SHARD_SIZE

    @classmethod
    def from_config(cls, config: JetDataConfig, shard_size: int = SHARD_SIZE) -> GenSettings:
        """The settings of ``config`` (detector values are dropped when the detector is off)."""
        if config.min_jet_pt >= config.max_jet_pt:
            raise DataError(
                f"data.min_jet_pt ({config.min_jet_pt}) must be below data.max_jet_pt ({config.max_jet_pt})"
            )
        if shard_size < 1:
            raise DataError(f"shard_size must be at least 1, got {shard_size}")
        det = config.detector
        return cls(
            jet_type=config.jet_type,
            num_particles=config.num_particles,
            num_jets=config.num_jets,
            seed=config.seed,
            min_jet_pt=float(config.min_jet_pt),
            max_jet_pt=float(config.max_jet_pt),
            detector=det.enabled,
            detector_max_abs_eta=float(det.max_abs_eta) if det.enabled else None,
            detector_min_pt=float(det.min_pt) if det.enabled else None,
            shard_size=shard_size,
        )

    @property
    def num_shards(self) -> int:
        return math.ceil(self.num_jets / self.shard_size)

    def shard_jets(self, shard: int) -> int:
        """How many jets shard ``shard`` holds (the last one may be smaller)."""
        return min(self.shard_size, self.num_jets - shard * self.shard_size)

    def recipe(self) -> dict[str, Any]:
        """The fixed recipe constants these data are made with."""
        return {
            "recipe_version": RECIPE_VERSION,
            "pthat_window": list(PTHAT_WINDOW),
            "jet_radius": JET_RADIUS,
            "max_jet_abs_eta": MAX_JET_ABS_ETA,
            "match_radius": MATCH_RADIUS,
            "match_ids": sorted(MATCH_IDS[self.jet_type]),
            "pythia_settings": list(pythia_settings(self.jet_type)),
            "event_batch": MAX_EVENT_BATCH,
        }

    def fingerprint(self) -> str:
        """A hash of the settings and the recipe: equal fingerprints mean equal data."""
        text = json.dumps({"settings": asdict(self), "recipe": self.recipe()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def meta(self) -> dict[str, Any]:
        """What a generated file records about how it was made."""
        return {
            "source": "pythia",
            **asdict(self),
            "recipe": self.recipe(),
            "fingerprint": self.fingerprint(),
            "generator": _versions(),
        }


def pythia_settings(jet_type: str) -> tuple[str, ...]:
    """Pythia's settings for ``jet_type`` jets, without the seed."""
    if jet_type not in PROCESS_SETTINGS:
        raise DataError(f"unknown jet type {jet_type!r}; choose one of {', '.join(PROCESS_SETTINGS)}")
    return COMMON_SETTINGS + PROCESS_SETTINGS[jet_type]


def shard_seed(seed: int, jet_type: str, shard: int) -> int:
    """Pythia's ``Random:seed`` for shard ``shard``: a hash of (seed, jet type, shard) in 1..900000000."""
    digest = hashlib.sha256(f"pcgen-pythia/{seed}/{jet_type}/{shard}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % MAX_PYTHIA_SEED + 1


def cached_path(config: JetDataConfig) -> Path:
    """The cache file for ``config``'s Pythia jets; its name encodes every setting that changes them."""
    s = GenSettings.from_config(config)
    det = f"det-eta{s.detector_max_abs_eta:g}-pt{s.detector_min_pt:g}" if s.detector else "nodet"
    name = (
        f"pythia-{s.jet_type}-N{s.num_particles}-{s.num_jets}jets-seed{s.seed}"
        f"-pt{s.min_jet_pt:g}-{s.max_jet_pt:g}-{det}-{s.fingerprint()[:10]}.h5"
    )
    return Path(config.cache_dir) / name


def shard_folder(out: Path) -> Path:
    """The folder holding the shard files of the merged file ``out``."""
    out = Path(out)
    return out.parent / f"{out.stem}.shards"


def shard_path(folder: Path, shard: int) -> Path:
    """The file of shard ``shard`` in ``folder``."""
    return Path(folder) / f"shard-{shard:05d}.h5"


# ------------------------------------------------------------------------------------------------
# One shard: Pythia events -> visible particles -> FastJet -> JetNet-like jets
# ------------------------------------------------------------------------------------------------


def make_pythia(settings: Sequence[str], seed: int) -> Any:
    """A quiet, initialised Pythia with ``settings`` and ``Random:seed = seed``."""
    import pythia8mc as pythia8

    pythia = pythia8.Pythia("", False)
    for line in (*settings, "Random:setSeed = on", f"Random:seed = {seed}"):
        if not pythia.readString(line):
            raise DataError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise DataError(f"Pythia failed to initialise with {list(settings)}")
    return pythia


def visible_particles(event: Any) -> np.ndarray:
    """``(n, 4)`` float64 (px, py, pz, E) of the visible final-state particles of a Pythia event."""
    rows = [(p.px(), p.py(), p.pz(), p.e()) for p in event.particles() if p.isFinal() and p.isVisible()]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def hard_axes(process: Any, ids: frozenset[int]) -> np.ndarray:
    """``(m, 2)`` (eta, phi) of the hard-process particles (status +-22 / +-23) whose |id| is in ``ids``."""
    rows = [(p.eta(), p.phi()) for p in process if p.idAbs() in ids and p.statusAbs() in (22, 23)]
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def apply_detector(p4: np.ndarray, max_abs_eta: float, min_pt: float) -> np.ndarray:
    """Keep the particles with |eta| < ``max_abs_eta`` and pT >= ``min_pt``."""
    pt = np.hypot(p4[:, 0], p4[:, 1])
    eta = np.arcsinh(np.divide(p4[:, 2], pt, out=np.full_like(pt, np.inf), where=pt > 0))
    return p4[(np.abs(eta) < max_abs_eta) & (pt >= min_pt)]


def cluster_events(events: Sequence[np.ndarray], ptmin: float) -> list[list[np.ndarray]]:
    """Anti-kT R=0.8 jets above ``ptmin`` of each event, as arrays of constituent row indices."""
    import awkward as ak

    _silence_fastjet_banner()
    counts = np.array([len(e) for e in events], dtype=np.int64)
    if counts.sum() == 0:
        return [[] for _ in events]
    index = _constituent_index(np.concatenate(events, axis=0), counts, ptmin)
    jets_per_event = ak.to_numpy(ak.num(index, axis=1))
    sizes = ak.to_numpy(ak.flatten(ak.num(index, axis=2)))
    members = np.split(ak.to_numpy(ak.flatten(index, axis=None)).astype(np.int64), np.cumsum(sizes)[:-1])
    edges = np.concatenate([[0], np.cumsum(jets_per_event)])
    return [members[edges[i] : edges[i + 1]] for i in range(len(events))]


def _constituent_index(flat: np.ndarray, counts: np.ndarray, ptmin: float) -> Any:
    """FastJet's awkward interface: events x jets x constituent indices."""
    import awkward as ak
    import fastjet

    columns = {"px": flat[:, 0], "py": flat[:, 1], "pz": flat[:, 2], "E": flat[:, 3]}
    particles = ak.unflatten(ak.zip(columns, with_name="Momentum4D"), counts)
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_RADIUS)
    return fastjet.ClusterSequence(particles, jet_def).constituent_index(ptmin)


def jet_kinematics(p4: np.ndarray) -> tuple[float, float, float, float]:
    """(pT, eta, phi, mass) of the four-momentum sum of ``p4`` (E-scheme)."""
    px, py, pz, e = p4.sum(axis=0)
    pt = math.hypot(px, py)
    eta = math.asinh(pz / pt) if pt > 0 else math.copysign(math.inf, pz)
    mass = math.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0))
    return pt, eta, math.atan2(py, px), mass


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Angles wrapped to [-pi, pi)."""
    return (dphi + np.pi) % (2 * np.pi) - np.pi


def jetnet_jet(p4: np.ndarray, num_particles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One jet's (points ``(N, 3)``, mask ``(N,)``, globals ``(4,)``) in JetNet's conventions."""
    pt_jet, eta_jet, phi_jet, mass = jet_kinematics(p4)
    pt = np.hypot(p4[:, 0], p4[:, 1])
    order = np.argsort(-pt, kind="stable")[:num_particles]
    lead, pt = p4[order], pt[order]
    eta = np.arcsinh(lead[:, 2] / pt)
    phi = np.arctan2(lead[:, 1], lead[:, 0])
    n = len(order)
    points = np.zeros((num_particles, 3), np.float32)
    points[:n] = np.stack([eta - eta_jet, wrap_phi(phi - phi_jet), pt / pt_jet], axis=1)
    mask = np.zeros(num_particles, bool)
    mask[:n] = True
    return points, mask, np.array([pt_jet, eta_jet, mass, n], np.float32)


def select_jets(p4: np.ndarray, members: list[np.ndarray], axes: np.ndarray, settings: GenSettings) -> list[np.ndarray]:
    """The constituents of the jets that pass the cuts and match a hard axis, by decreasing pT."""
    kept: list[tuple[float, np.ndarray]] = []
    for idx in members:
        jet = p4[idx]
        pt, eta, phi, _ = jet_kinematics(jet)
        in_window = settings.min_jet_pt <= pt <= settings.max_jet_pt and abs(eta) < MAX_JET_ABS_ETA
        if in_window and _matches(eta, phi, axes):
            kept.append((pt, jet))
    kept.sort(key=lambda item: -item[0])
    return [jet for _, jet in kept]


def _matches(eta: float, phi: float, axes: np.ndarray) -> bool:
    if not len(axes):
        return False
    dr2 = (axes[:, 0] - eta) ** 2 + wrap_phi(axes[:, 1] - phi) ** 2
    return bool((dr2 < MATCH_RADIUS**2).any())


def generate_shard(settings: GenSettings, shard: int, report: Callable[[int], None] | None = None) -> PointClouds:
    """Make shard ``shard`` of a job: exactly ``settings.shard_jets(shard)`` jets, deterministically.

    ``report(n)`` is called with the number of jets added after each batch of events.
    """
    target = settings.shard_jets(shard)
    if target < 1:
        raise DataError(f"shard {shard} is out of range: the job has {settings.num_shards} shards")
    pythia = make_pythia(pythia_settings(settings.jet_type), shard_seed(settings.seed, settings.jet_type, shard))
    ids = MATCH_IDS[settings.jet_type]
    jets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    empty_events = 0
    while len(jets) < target:
        batch = _event_batch(pythia, ids, settings, size=min(MAX_EVENT_BATCH, math.ceil((target - len(jets)) / 2)))
        before = len(jets)
        members = cluster_events([p4 for p4, _ in batch], ptmin=0.99 * settings.min_jet_pt)
        for (p4, axes), event_jets in zip(batch, members, strict=True):
            selected = select_jets(p4, event_jets, axes, settings)
            empty_events = 0 if selected else empty_events + 1
            jets.extend(jetnet_jet(jet, settings.num_particles) for jet in selected[: target - len(jets)])
        if report is not None:
            report(len(jets) - before)
        if empty_events >= MAX_EMPTY_EVENTS:
            raise DataError(
                f"{MAX_EMPTY_EVENTS} Pythia events in a row gave no {settings.jet_type} jet with |eta| < "
                f"{MAX_JET_ABS_ETA} and pT in [{settings.min_jet_pt}, {settings.max_jet_pt}] GeV; the "
                f"hard process has pT {PTHAT_WINDOW[0]:g}-{PTHAT_WINDOW[1]:g} GeV, so widen the window"
            )
    points, mask, globs = (np.stack(parts) for parts in zip(*jets, strict=True))
    meta = {**settings.meta(), "shard": shard, "pythia_seed": shard_seed(settings.seed, settings.jet_type, shard)}
    return PointClouds(points, mask, JET_FEATURES, globs, JET_GLOBALS, meta)


def _event_batch(
    pythia: Any, ids: frozenset[int], settings: GenSettings, size: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``size`` successful events as (visible particles after the detector step, hard axes)."""
    batch = []
    failures = 0
    while len(batch) < size:
        if not pythia.next():
            failures += 1
            if failures > 100:
                raise DataError("Pythia failed to generate 100 events in a row")
            continue
        p4 = visible_particles(pythia.event)
        if settings.detector:
            assert settings.detector_max_abs_eta is not None and settings.detector_min_pt is not None
            p4 = apply_detector(p4, settings.detector_max_abs_eta, settings.detector_min_pt)
        batch.append((p4, hard_axes(pythia.process, ids)))
    return batch


_BANNER_SILENCED = False


def _silence_fastjet_banner() -> None:
    """FastJet prints a banner on stdout at its first clustering; run that one with stdout closed."""
    global _BANNER_SILENCED
    if _BANNER_SILENCED:
        return
    _BANNER_SILENCED = True
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        _constituent_index(np.array([[1.0, 0.0, 0.0, 1.0]]), np.array([1]), 0.0)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _versions() -> dict[str, str]:
    """Installed versions of the generator packages, recorded in every file."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("pythia8mc", "fastjet", "awkward"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    return found


# ------------------------------------------------------------------------------------------------
# A whole job: shards on disk, in parallel, merged at the end
# ------------------------------------------------------------------------------------------------


def make_shard_file(
    settings: GenSettings, shard: int, folder: Path, report: Callable[[int], None] | None = None
) -> Path:
    """Generate shard ``shard`` and write it (atomically) into ``folder``."""
    pc = generate_shard(settings, shard, report)
    return write_pointclouds(pc, shard_path(folder, shard))


def shard_is_done(settings: GenSettings, folder: Path, shard: int) -> bool:
    """Whether ``folder`` holds a complete shard ``shard`` made with exactly these settings."""
    path = shard_path(folder, shard)
    if not path.is_file():
        return False
    try:
        meta = read_meta(path)
        return (
            meta.get("fingerprint") == settings.fingerprint()
            and meta.get("shard") == shard
            and num_clouds(path) == settings.shard_jets(shard)
        )
    except DataError:
        return False


def is_complete(settings: GenSettings, out: Path) -> bool:
    """Whether ``out`` is a merged file made with exactly these settings."""
    if not Path(out).is_file():
        return False
    try:
        return read_meta(out).get("fingerprint") == settings.fingerprint() and num_clouds(out) == settings.num_jets
    except DataError:
        return False


def merge_shards(settings: GenSettings, folder: Path, out: Path) -> Path:
    """Concatenate the shards in ``folder`` in order into ``out`` (atomically)."""
    parts = [read_pointclouds(shard_path(folder, k)) for k in range(settings.num_shards)]
    pc = PointClouds(
        np.concatenate([p.points for p in parts]),
        np.concatenate([p.mask for p in parts]),
        JET_FEATURES,
        np.concatenate([p.globals for p in parts]),
        JET_GLOBALS,
        settings.meta(),
    )
    return write_pointclouds(pc, out)


def generate_jets(
    config: JetDataConfig,
    out: Path,
    shards: list[int] | None = None,
    progress: bool = True,
    shard_size: int = SHARD_SIZE,
    overwrite: bool = True,
) -> Path:
    """Generate ``config``'s Pythia jets into the HDF5 file ``out`` and return its path.

    Shards go to :func:`shard_folder` ``(out)``; finished ones are reused. With ``shards`` only those
    shards are made and the shard folder is returned, unless every shard is then present, in which
    case they are merged into ``out``. An up-to-date ``out`` is returned without any work; another
    file at ``out`` is replaced only with ``overwrite`` (else :class:`~pcgen.safe_io.OverwriteError`).
    """
    settings = GenSettings.from_config(config, shard_size)
    out = Path(out)
    wanted = _wanted_shards(settings, shards)
    if is_complete(settings, out):
        return out
    check_output_path(out, overwrite)
    _silence_fastjet_banner()  # before any thread or worker process starts
    folder = shard_folder(out)
    todo = [k for k in wanted if not shard_is_done(settings, folder, k)]
    total = sum(settings.shard_jets(k) for k in wanted)
    done = total - sum(settings.shard_jets(k) for k in todo)
    workers = min(config.workers or os.cpu_count() or 1, max(len(todo), 1))
    label = f"Pythia {settings.jet_type} jets, N={settings.num_particles}"
    with _progress_bar(progress, total, done, label) as advance:
        if workers <= 1:
            for k in todo:
                make_shard_file(settings, k, folder, advance)
        else:
            _run_pool(settings, folder, todo, workers, advance)
    if all(shard_is_done(settings, folder, k) for k in range(settings.num_shards)):
        return merge_shards(settings, folder, out)
    return folder


def _wanted_shards(settings: GenSettings, shards: list[int] | None) -> list[int]:
    if shards is None:
        return list(range(settings.num_shards))
    bad = [k for k in shards if not 0 <= k < settings.num_shards]
    if bad:
        raise DataError(f"shards {bad} out of range: {settings.num_jets} jets make shards 0..{settings.num_shards - 1}")
    return sorted(set(shards))


_REPORT_QUEUE: Any = None


def _init_worker(report_queue: Any) -> None:
    global _REPORT_QUEUE
    _REPORT_QUEUE = report_queue


def _worker_shard(settings: GenSettings, shard: int, folder: Path) -> int:
    """Pool task: make one shard file, reporting progress through the queue; returns the shard."""
    make_shard_file(settings, shard, folder, _REPORT_QUEUE.put if _REPORT_QUEUE is not None else None)
    return shard


def _run_pool(
    settings: GenSettings, folder: Path, todo: list[int], workers: int, advance: Callable[[int], None]
) -> None:
    """Make the shards ``todo`` over ``workers`` processes, each with its own Pythia.

    On Linux the workers are forked: they only run Pythia, FastJet, numpy and h5py, and forking
    spares each of them re-importing pcgen (and torch, seconds per process). Elsewhere they are spawned.
    """
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    reports = ctx.Queue()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(reports,)) as pool:
        pending: set[Future[int]] = {pool.submit(_worker_shard, settings, k, folder) for k in todo}
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(reports, advance)
                for future in finished:
                    future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    _drain(reports, advance)
    reports.close()


def _drain(reports: Any, advance: Callable[[int], None]) -> None:
    while True:
        try:
            advance(reports.get_nowait())
        except queue_module.Empty:
            return


@contextmanager
def _progress_bar(enabled: bool, total: int, done: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)`` moving a rich progress bar over jets, or a no-op when not ``enabled``."""
    if not enabled:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("jets"))
    with Progress(*columns, TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)
