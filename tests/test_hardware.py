"""Native bfloat16 detection from /proc/cpuinfo texts and oneDNN's settings."""

import pytest

from pg2_tf.core import hardware

# Abridged /proc/cpuinfo of two processors each: an AVX2 machine (the one issue 14 measured
# bfloat16 12x slower on) and a Zen 4 / Sapphire Rapids class one.
AVX2_ONLY = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2
processor\t: 1
flags\t\t: fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2
"""
WITH_AVX512_BF16 = AVX2_ONLY.replace("bmi2", "bmi2 avx512f avx512bw avx512_vnni avx512_bf16")
WITH_AMX = AVX2_ONLY.replace("bmi2", "bmi2 avx512f amx_bf16 amx_tile amx_int8")


def test_flags_line_is_parsed_into_a_set():
    assert hardware.cpu_flags(AVX2_ONLY) == {
        *"fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi2".split()
    }


@pytest.mark.parametrize(
    ("cpuinfo", "native", "reason_mentions"),
    [
        (WITH_AVX512_BF16, True, "avx512_bf16"),
        (WITH_AMX, True, "amx_bf16"),
        (AVX2_ONLY, False, "no bfloat16 instructions"),
    ],
)
def test_native_bfloat16_needs_its_cpu_flag(cpuinfo, native, reason_mentions):
    support = hardware.bfloat16_support(cpuinfo, environ={})
    assert support.native is native
    assert reason_mentions in support.reason


@pytest.mark.parametrize(
    "environ",
    [{"TF_ENABLE_ONEDNN_OPTS": "0"}, {"ONEDNN_MAX_CPU_ISA": "avx512_core_vnni"}],
)
def test_onednn_settings_can_rule_out_the_bfloat16_instructions(environ):
    support = hardware.bfloat16_support(WITH_AVX512_BF16, environ=environ)
    assert not support.native
    assert list(environ)[0] in support.reason


def test_no_cpuinfo_file_means_not_native(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "CPUINFO", str(tmp_path / "cpuinfo"))
    support = hardware.bfloat16_support(environ={})
    assert not support.native
    assert "cpuinfo" in support.reason


def test_this_machines_cpuinfo_is_read_when_none_is_given(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(WITH_AMX)
    monkeypatch.setattr(hardware, "CPUINFO", str(cpuinfo))
    assert hardware.bfloat16_support(environ={}).native
