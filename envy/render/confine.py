"""Paths in jobs and tasks stay inside the job folder or the farm's project roots (Must-hold 6).

A job file is written by whoever can write the share. Its ``source``,
``output`` and every path a task names (a husk task's USD file and output, a
hython task's scene) are checked here before any agent renames, reads or
writes there:

* after the path remap, the path must be inside the job's own folder or
  inside one of the project roots the farm config allows (``project_roots``),
  compared lexically first (no ``..`` component may climb out);
* then each component that exists is looked at with ``lstat``, from the root
  down: a symlink is allowed only when where it points is inside an allowed
  root too (a link in the project folder to another student's Documents is
  refused, however innocent its name);
* an output never replaces what Envy did not make: an existing symlink,
  folder or other non-regular file at an output's final name is refused.

Each refusal is a PathRefused (a ValueError, one line naming the path and the
roots allowed); the worker marks the item failed with it as the reason.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

# A range task naming more frames than this is not a chunk of a job: 200 million
# frames used to grow an agent's memory without end.
MAX_TASK_FRAMES = 100_000


class PathRefused(ValueError):
    """A path a job or task names that leaves the allowed folders (message is one line)."""


class RangeRefused(ValueError):
    """A range task that is not a bounded chunk of frames."""


def _norm(path: PurePath) -> str:
    return os.path.normcase(os.path.normpath(str(path)))


def _lexically_inside(path: PurePath, root: PurePath) -> bool:
    p, r = _norm(path), _norm(root)
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


# What an Envy folder holds besides the jobs' own folders (envy/share/layout.py): a job may not
# render into the agents' status files, the instruction file or another job's folder.
ENVY_ENTRIES = ("ENVY_SHARE.json", "config.yaml", "instructions.txt", "instructions.lock", "status", "logs",
                "jobs", "users", "seats", "app")


@dataclass(frozen=True)
class Confinement:
    """Where one job's paths may lead: the share (less Envy's own files), its job folder and the
    farm's project roots. Relative paths are taken from the job folder."""

    job_dir: Path
    project_roots: tuple[Path, ...] = ()
    share_root: Path | None = None  # None: the job folder alone (a task's own paths)

    @classmethod
    def for_job(cls, job_dir: Path, project_roots: Iterable[str | os.PathLike[str]] = (),
                share_root: Path | None = None) -> Confinement:
        # Absolute, so that a share given as a relative --share compares with the jobs' absolute paths.
        # A root that is not absolute here is another OS's ("P:/projects" on Linux): it holds nothing here.
        roots = tuple(Path(os.path.abspath(r)) for r in project_roots if str(r).strip() and Path(r).is_absolute())
        share = Path(os.path.abspath(share_root)) if share_root is not None else None
        return cls(Path(os.path.abspath(job_dir)), roots, share)

    @property
    def roots(self) -> tuple[Path, ...]:
        return (self.share_root if self.share_root is not None else self.job_dir, *self.project_roots)

    def _describe_roots(self) -> str:
        shown = ", ".join(str(r) for r in self.roots)
        hint = "" if self.project_roots else " (an admin can add project folders to project_roots in the farm config)"
        return f"{shown}{hint}"

    def _reserved(self, path: PurePath) -> bool:
        """Inside Envy's own files on the share (and not in this job's folder)."""
        if self.share_root is None or _lexically_inside(path, self.job_dir):
            return False
        return any(_lexically_inside(path, self.share_root / name) for name in ENVY_ENTRIES)

    def check(self, path: str | os.PathLike[str], what: str) -> Path:
        """``path`` (made absolute against the job folder) when it may be used; PathRefused otherwise."""
        text = os.fspath(path)
        if "\x00" in text:
            raise PathRefused(f"{what} {text!r} contains a NUL character")
        if ".." in PurePath(text).parts or ".." in text.replace("\\", "/").split("/"):
            raise PathRefused(f"{what} {text!r} climbs out with '..'; allowed: inside {self._describe_roots()}")
        candidate = Path(text)
        if not candidate.is_absolute():
            if PureWindowsPath(text).drive:  # C:/x or //server/x on a machine that has no drives
                raise PathRefused(f"{what} {text} is another OS's path here; add a remap rule for it")
            candidate = self.job_dir / candidate
        root = next((r for r in self.roots if _lexically_inside(candidate, r)), None)
        if root is None:
            raise PathRefused(f"{what} {text} is outside the allowed folders {self._describe_roots()}")
        if self._reserved(candidate):
            raise PathRefused(f"{what} {text} is inside Envy's own files on the share")
        self._check_links(candidate, root, what)
        return candidate

    def _check_links(self, path: Path, root: Path, what: str) -> None:
        """lstat each existing component below ``root``: a symlink must point inside an allowed root."""
        real_roots = [os.path.realpath(r) for r in self.roots]
        current = Path(root)
        rel = Path(os.path.relpath(path, root)).parts if _norm(path) != _norm(root) else ()
        for part in rel:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                return  # the rest does not exist yet (an output folder about to be made)
            except OSError as exc:
                raise PathRefused(f"{what} {path}: cannot check {current} ({exc.strerror or exc})") from None
            if stat_mod.S_ISLNK(st.st_mode):
                target = os.path.realpath(current)
                if not any(_lexically_inside(PurePath(target), PurePath(r)) for r in real_roots):
                    raise PathRefused(
                        f"{what} {path}: {current} is a symlink to {target}, outside the allowed folders "
                        f"{self._describe_roots()}"
                    )
                if self.share_root is not None and self._reserved(
                        self.share_root / os.path.relpath(target, os.path.realpath(self.share_root))):
                    raise PathRefused(f"{what} {path}: {current} is a symlink into Envy's own files on the share")

    def check_output(self, final: str | os.PathLike[str], what: str = "output") -> Path:
        """An output's final name: confined, and never replacing a link, folder or device."""
        path = self.check(final, what)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path
        except OSError as exc:
            raise PathRefused(f"{what} {path}: cannot check it ({exc.strerror or exc})") from None
        if not stat_mod.S_ISREG(st.st_mode):
            raise PathRefused(f"{what} {path} exists and is not a plain file Envy wrote: refusing to replace it")
        return path

    def resolved_below_root(self, folder: Path, what: str) -> tuple[Path, tuple[str, ...]]:
        """``folder`` with its links resolved, as (the real root it is in, the parts below it), for
        opening it part by part without following any (envy/platform/pinned_folder.py).

        Called after ``check``: a link swapped in since then resolves outside and is refused here;
        one swapped in after this makes that open fail."""
        real = os.path.realpath(folder)
        for root in self.roots:
            real_root = os.path.realpath(root)
            if not _lexically_inside(PurePath(real), PurePath(real_root)):
                continue
            parts = Path(os.path.relpath(real, real_root)).parts if _norm(PurePath(real)) != _norm(
                PurePath(real_root)) else ()
            if self.share_root is not None and root == self.share_root and self._reserved(
                    self.share_root.joinpath(*parts)):
                raise PathRefused(f"{what} {folder} leads into Envy's own files on the share")
            return Path(real_root), tuple(parts)
        raise PathRefused(f"{what} {folder} leads to {real}, outside the allowed folders {self._describe_roots()}")

    def check_all(self, paths: Sequence[tuple[str, str]]) -> list[Path]:
        """``check`` each (path, what) pair; the first refusal raises."""
        return [self.check(p, what) for p, what in paths]


def check_frame_range(start: object, end: object, what: str = "range task") -> tuple[int, int]:
    """Whole numbers ``start <= end`` covering at most MAX_TASK_FRAMES frames."""
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        raise RangeRefused(f"{what} needs whole numbers 'start' <= 'end'")
    if end < start:
        raise RangeRefused(f"{what}: 'end' ({end}) is before 'start' ({start})")
    if end - start + 1 > MAX_TASK_FRAMES:
        raise RangeRefused(f"{what}: {end - start + 1} frames; at most {MAX_TASK_FRAMES} in one task")
    return start, end
