"""The engine configuration per CPU class: read from /proc/cpuinfo, chosen from measured speeds, overridable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distilgpt2_scoring.hardware import CLASS_CHOICES, CPU_CLASSES, OLDER, parse_cpuinfo
from distilgpt2_scoring.hardware import decide as decide_for
from distilgpt2_scoring.settings import ServingSettings

ENGINE_SPEEDS = Path(__file__).resolve().parents[2] / "benchmarks" / "engine-speeds.json"
BASE_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma"
FLAGS = {
    "avx2": BASE_FLAGS,
    "avx512": f"{BASE_FLAGS} avx512f avx512bw avx512vl",
    "avx512_vnni": f"{BASE_FLAGS} avx512f avx512bw avx512vl avx512_vnni",
    "avx512_bf16": f"{BASE_FLAGS} avx512f avx512bw avx512vl avx512_vnni avx512_bf16",
    "amx": f"{BASE_FLAGS} avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8",
    OLDER: "fpu sse sse2",
}


def cpuinfo(model: str, flags: str, processors: int = 2) -> str:
    return "\n".join(
        f"processor\t: {n}\nvendor_id\t: AuthenticAMD\nmodel name\t: {model}\nflags\t\t: {flags}\n"
        for n in range(processors)
    )


def decide(cpu_class: str, **settings):
    cpu = parse_cpuinfo(cpuinfo("Some CPU", FLAGS[cpu_class]))
    return decide_for(ServingSettings(**settings), cpu=cpu, device="cpu")


def test_cpuinfo_gives_the_model_name_and_the_first_processors_flags():
    cpu = parse_cpuinfo(cpuinfo("AMD EPYC 9V74 80-Core Processor", FLAGS["avx512_bf16"]))
    assert cpu.model == "AMD EPYC 9V74 80-Core Processor"
    assert {"avx2", "avx512_vnni", "avx512_bf16"} <= cpu.flags


@pytest.mark.parametrize("cpu_class", FLAGS)
def test_a_cpu_belongs_to_the_most_specific_class_its_flags_allow(cpu_class):
    assert parse_cpuinfo(cpuinfo("x", FLAGS[cpu_class])).cpu_class == cpu_class


def test_a_cpu_without_cpuinfo_is_of_no_class_and_still_gets_a_choice():
    assert parse_cpuinfo("").cpu_class == OLDER
    assert decide(OLDER).engine == "openvino"


@pytest.mark.parametrize("cpu_class", FLAGS)
def test_every_class_runs_f32_activations_with_the_int8_weights_unless_told_otherwise(cpu_class):
    config = decide(cpu_class)
    assert (config.engine, config.precision) == ("openvino", "f32")
    assert config.openvino_properties["INFERENCE_PRECISION_HINT"] == "f32"  # pinned, never the plugin's default


def test_amx_quantizes_the_activations_for_the_int8_kernels_in_groups_of_128_and_others_keep_the_plugins():
    assert decide("amx").openvino_properties["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == 128
    for cpu_class in set(FLAGS) - {"amx"}:
        assert "DYNAMIC_QUANTIZATION_GROUP_SIZE" not in decide(cpu_class).openvino_properties


@pytest.mark.parametrize(("value", "described"), [("64", "groups of 64"), ("0", "activations not quantized")])
def test_the_deployment_sets_the_activation_groups_or_turns_them_off(monkeypatch, value, described):
    monkeypatch.setenv("TEXTGEN_QUANTIZATION_GROUP", value)
    config = decide("avx512_bf16")
    assert config.openvino_properties["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == int(value)
    assert described in config.describe()
    assert "set by TEXTGEN_QUANTIZATION_GROUP" in config.why


def test_a_negative_activation_group_is_refused(monkeypatch):
    monkeypatch.setenv("TEXTGEN_QUANTIZATION_GROUP", "-1")
    with pytest.raises(ValueError, match="quantization_group"):
        ServingSettings()


def test_the_engine_threads_are_not_pinned_to_cpus_the_server_shares():
    assert decide("avx512_bf16").openvino_properties["ENABLE_CPU_PINNING"] is False


def test_an_unmeasured_class_says_whose_choice_it_borrows():
    assert "class avx2 unmeasured: avx512_vnni's choice" in decide("avx2").why
    assert "the fastest measured on AMD EPYC" in decide("avx512_bf16").why


def test_any_textgen_setting_wins_over_the_class_choice(monkeypatch):
    monkeypatch.setenv("TEXTGEN_PRECISION", "bf16")
    monkeypatch.setenv("TEXTGEN_ENGINE", "ctranslate2")
    monkeypatch.setenv("TEXTGEN_THREADS", "3")
    config = decide("avx512_bf16")
    assert (config.engine, config.precision, config.threads) == ("ctranslate2", "bf16", 3)
    assert "set by TEXTGEN_ENGINE, TEXTGEN_PRECISION, TEXTGEN_THREADS" in config.why


def test_the_start_up_line_names_cpu_class_engine_precision_and_threads():
    line = decide("amx", threads=2).describe()
    assert line.startswith(
        "CPU Some CPU (class amx): engine openvino on cpu, precision f32, activations quantized in groups of 128, "
        "2 threads"
    )
    assert ", precision f32, 2 threads" in decide("avx512_bf16", threads=2).describe()


def test_a_cuda_device_gets_ctranslate2_whatever_the_cpu():
    assert decide_for(ServingSettings(), cpu=parse_cpuinfo(""), device="cuda").engine == "ctranslate2"


# The table is the measured figures' -----------------------------------------------------------


def measured_classes() -> dict:
    return json.loads(ENGINE_SPEEDS.read_text())["classes"]


def test_every_class_has_a_choice_and_every_measured_one_names_its_cpu():
    assert set(CLASS_CHOICES) == {*CPU_CLASSES, OLDER}
    for name, figures in measured_classes().items():
        choice = CLASS_CHOICES[name]
        if figures.get("openvino_precision"):  # measured on a machine of the class, not held to its kernels
            assert choice.measured_on and choice.measured_on in figures["cpu"], name


@pytest.mark.parametrize("cpu_class", [c for c, choice in CLASS_CHOICES.items() if choice.measured_on])
def test_no_configuration_measured_on_a_class_is_faster_than_its_choice_at_batch_8(cpu_class):
    """Faster: a median above every round of the choice's (on a shared 2-vCPU machine the rounds of
    one configuration spread widely, so a median within the choice's own spread is a tie, and a tie
    keeps f32, the reference arithmetic); a file without rounds compares the figures themselves."""
    figures = measured_classes()[cpu_class]  # engines.openvino: the precision served (the choice's)
    choice = CLASS_CHOICES[cpu_class]
    served = choice.engine if choice.engine != "openvino" else f"openvino/{choice.openvino_variant}"
    chosen_rounds = figures.get("rounds", {}).get(served, {}).get("8") or [figures["engines"][choice.engine]["8"]]
    at_batch_8 = [rates["8"] for rates in figures["engines"].values() if "8" in rates]
    at_batch_8 += [rates["8"] for rates in figures.get("openvino_precision", {}).values()]
    assert max(at_batch_8) <= max(chosen_rounds)
    if choice.engine == "openvino" and "openvino_precision" in figures:
        assert figures["openvino_precision"][choice.openvino_variant] == figures["engines"]["openvino"]


def test_the_deployments_auto_values_leave_the_choice_to_the_class(monkeypatch):
    for name, value in {"ENGINE": "auto", "PRECISION": "auto", "QUANTIZATION_GROUP": "auto", "THREADS": "0"}.items():
        monkeypatch.setenv(f"TEXTGEN_{name}", value)
    assert "set by" not in decide("avx512_bf16").why
