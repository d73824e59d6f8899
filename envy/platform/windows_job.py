"""Windows Job Object with kill-on-close: the renders die when the agent's handle goes away.

Written from the Win32 documentation (CreateJobObjectW, SetInformationJobObject
with JobObjectExtendedLimitInformation, AssignProcessToJobObject, OpenProcess).
It cannot run on the Linux CI machine; the structure layouts are checked there
against the sizes the documentation gives for 64-bit Windows.
Since Windows 8 a process may belong to nested jobs, so this works also when
the agent itself runs inside a job (Task Scheduler, some terminals).
"""

from __future__ import annotations

import ctypes
import threading

JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS = 9  # JobObjectExtendedLimitInformation
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
PROCESS_SET_QUOTA = 0x0100
PROCESS_TERMINATE = 0x0001

_DWORD = ctypes.c_uint32
_HANDLE = ctypes.c_void_p
_LARGE_INTEGER = ctypes.c_int64
_ULONG_PTR = ctypes.c_size_t  # pointer-sized unsigned
_SIZE_T = ctypes.c_size_t


class IO_COUNTERS(ctypes.Structure):
    _fields_ = [
        ("ReadOperationCount", ctypes.c_uint64),
        ("WriteOperationCount", ctypes.c_uint64),
        ("OtherOperationCount", ctypes.c_uint64),
        ("ReadTransferCount", ctypes.c_uint64),
        ("WriteTransferCount", ctypes.c_uint64),
        ("OtherTransferCount", ctypes.c_uint64),
    ]


class JOBOBJECT_BASIC_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("PerProcessUserTimeLimit", _LARGE_INTEGER),
        ("PerJobUserTimeLimit", _LARGE_INTEGER),
        ("LimitFlags", _DWORD),
        ("MinimumWorkingSetSize", _SIZE_T),
        ("MaximumWorkingSetSize", _SIZE_T),
        ("ActiveProcessLimit", _DWORD),
        ("Affinity", _ULONG_PTR),
        ("PriorityClass", _DWORD),
        ("SchedulingClass", _DWORD),
    ]


class JOBOBJECT_EXTENDED_LIMIT_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("BasicLimitInformation", JOBOBJECT_BASIC_LIMIT_INFORMATION),
        ("IoInfo", IO_COUNTERS),
        ("ProcessMemoryLimit", _SIZE_T),
        ("JobMemoryLimit", _SIZE_T),
        ("PeakProcessMemoryUsed", _SIZE_T),
        ("PeakJobMemoryUsed", _SIZE_T),
    ]


def _kernel32():  # type: ignore[no-untyped-def]
    k32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    k32.CreateJobObjectW.restype = _HANDLE
    k32.CreateJobObjectW.argtypes = [ctypes.c_void_p, ctypes.c_wchar_p]
    k32.SetInformationJobObject.restype = ctypes.c_int
    k32.SetInformationJobObject.argtypes = [_HANDLE, ctypes.c_int, ctypes.c_void_p, _DWORD]
    k32.AssignProcessToJobObject.restype = ctypes.c_int
    k32.AssignProcessToJobObject.argtypes = [_HANDLE, _HANDLE]
    k32.OpenProcess.restype = _HANDLE
    k32.OpenProcess.argtypes = [_DWORD, ctypes.c_int, _DWORD]
    k32.CloseHandle.restype = ctypes.c_int
    k32.CloseHandle.argtypes = [_HANDLE]
    return k32


def _last_error(what: str) -> OSError:
    code = ctypes.get_last_error()  # type: ignore[attr-defined]
    return OSError(code, f"{what} failed (Windows error {code})")


class KillOnCloseJob:
    """One job for all of an agent's renders. Killing the agent closes the handle: Windows kills the job."""

    def __init__(self) -> None:
        self._k32 = _kernel32()
        self._lock = threading.Lock()
        handle = self._k32.CreateJobObjectW(None, None)
        if not handle:
            raise _last_error("CreateJobObjectW")
        info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION()
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        if not self._k32.SetInformationJobObject(
            handle, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION_CLASS, ctypes.byref(info), ctypes.sizeof(info)
        ):
            error = _last_error("SetInformationJobObject")
            self._k32.CloseHandle(handle)
            raise error
        self._handle: int | None = handle

    def assign(self, pid: int) -> None:
        """Put process ``pid`` (and the children it starts from now on) into the job."""
        with self._lock:
            if self._handle is None:
                raise OSError(0, "the job is closed")
            process = self._k32.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE, 0, pid)
            if not process:
                raise _last_error(f"OpenProcess({pid})")
            try:
                if not self._k32.AssignProcessToJobObject(self._handle, process):
                    raise _last_error(f"AssignProcessToJobObject({pid})")
            finally:
                self._k32.CloseHandle(process)

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._k32.CloseHandle(self._handle)
                self._handle = None
