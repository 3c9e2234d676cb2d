"""What this machine's CPU computes natively: whether bfloat16 convolutions pay.

TensorFlow's CPU kernels for bfloat16 (oneDNN) run on the CPU's bfloat16 instructions when it has
them (AVX512_BF16 on Cooper Lake, Sapphire Rapids, Zen 4 and later; AMX-BF16 on Sapphire Rapids
and later): then a bfloat16 convolution runs about twice as fast as float32. Without them every
bfloat16 value is converted in software, and a training step ran 12x slower than float32
(issue 14), so ``--mixed_precision`` uses bfloat16 only where :func:`bfloat16_support` says so.

    support = bfloat16_support()          # reads /proc/cpuinfo and the oneDNN settings
    support.native, support.reason        # (True, "the CPU has avx512_bf16")
"""

import dataclasses
import os

# CPU flags (as Linux's /proc/cpuinfo spells them) of instructions that compute in bfloat16.
BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) below the first one with bfloat16 instructions.
_ONEDNN_ISAS_WITHOUT_BFLOAT16 = {
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
}
CPUINFO = "/proc/cpuinfo"


@dataclasses.dataclass(frozen=True)
class Bfloat16Support:
    """Whether TensorFlow computes bfloat16 natively on this CPU, and why (one short clause)."""

    native: bool
    reason: str


def cpu_flags(cpuinfo_text: str) -> frozenset:
    """The feature flags of a /proc/cpuinfo text.

    Args:
        cpuinfo_text: the text of /proc/cpuinfo.

    Returns:
        frozenset of lower-case flags: the union over all processors of the ``flags`` lines (x86)
        and ``Features`` lines (ARM).
    """
    flags = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.lower().split())
    return frozenset(flags)


def read_cpuinfo(path: str) -> str | None:
    """The text of a cpuinfo file.

    Args:
        path: the file, normally Linux's /proc/cpuinfo (:data:`CPUINFO`).

    Returns:
        Its text, or None where it cannot be read (macOS, Windows).
    """
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def bfloat16_support(cpuinfo_text: str | None = None, environ=None) -> Bfloat16Support:
    """Whether TensorFlow's CPU kernels compute bfloat16 natively here.

    Native needs a CPU flag of :data:`BFLOAT16_FLAGS`, oneDNN enabled (``TF_ENABLE_ONEDNN_OPTS``
    not 0) and no ``ONEDNN_MAX_CPU_ISA`` cap below the bfloat16 instructions.

    Args:
        cpuinfo_text: a /proc/cpuinfo text, or None for this machine's.
        environ: the environment to read oneDNN's settings from, or None for ``os.environ``.

    Returns:
        :class:`Bfloat16Support`: ``native`` and the reason, one short clause.
    """
    environ = os.environ if environ is None else environ
    if cpuinfo_text is None:
        cpuinfo_text = read_cpuinfo(CPUINFO)
    if cpuinfo_text is None:
        return Bfloat16Support(False, f"no {CPUINFO} to read the CPU's bfloat16 support from")
    flags = cpu_flags(cpuinfo_text)
    found = [flag for flag in BFLOAT16_FLAGS if flag in flags]
    if not found:
        return Bfloat16Support(
            False, f"the CPU has no bfloat16 instructions ({' or '.join(BFLOAT16_FLAGS)})"
        )
    if environ.get("TF_ENABLE_ONEDNN_OPTS", "").strip() == "0":
        return Bfloat16Support(False, "TF_ENABLE_ONEDNN_OPTS=0 turns off oneDNN's bfloat16 kernels")
    cap = environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap in _ONEDNN_ISAS_WITHOUT_BFLOAT16:
        return Bfloat16Support(False, f"ONEDNN_MAX_CPU_ISA={cap} rules out {found[0]}")
    return Bfloat16Support(True, f"the CPU has {' and '.join(found)}")
