"""The export steps on a tiny random Llama with the default model's tokenizer: merge, convert, quantize,
check; failures leave no GGUF behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantize import ExportError, check_gguf, export_model
from quantize.__main__ import main as cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def tiny_adapter(tiny_model, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero weights (peft initialises B to zero, which would merge to nothing)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    folder = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(folder)
    return folder


def test_export_with_an_adapter_gives_checked_ggufs_of_each_type(tiny_model, tiny_adapter, tmp_path):
    from app.serving.gguf_header import read_gguf_header

    seen = []
    killed = tmp_path / "out" / ".export-killed"  # an export killed outright left its work folder
    (killed / "merged").mkdir(parents=True)
    result = export_model(
        tiny_model,
        tmp_path / "out",
        ["Q4_K_M", "F16"],
        adapter_dir=tiny_adapter,
        name="tiny",
        progress=lambda step, fraction: seen.append(step),
    )
    assert set(result.files) == {"Q4_K_M", "F16"}
    for quant, path in result.files.items():
        assert path.parent == tmp_path / "out" and path.is_file()
        assert isinstance(result.samples[quant], str)
        # the template travels with the model
        assert "tokenizer.chat_template" in read_gguf_header(path).metadata
    assert result.files["Q4_K_M"].stat().st_size < result.files["F16"].stat().st_size
    assert seen[0] == "merging" and seen[-1] == "done"
    assert {"merge", "convert", "quantize Q4_K_M"} <= set(result.seconds)
    # The merge changed the weights: the merged model differs from the base.
    from safetensors.torch import load_file

    base = load_file(str(next(tiny_model.glob("*.safetensors"))))
    merged = load_file(str(next(result.merged_dir.glob("*.safetensors"))))
    key = next(k for k in base if "q_proj" in k)
    assert not (base[key] == merged[key]).all()
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".export-")] == []
    assert not killed.exists()


def test_a_conversion_failure_names_the_step_and_leaves_no_gguf(tiny_model, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in tiny_model.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    config["architectures"] = ["NoSuchModelForCausalLM"]
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError) as raised:
        export_model(broken, tmp_path / "out", ["Q4_K_M"])
    assert raised.value.step == "convert" and "NoSuchModelForCausalLM" in raised.value.message
    assert list((tmp_path / "out").iterdir()) == []


def test_unknown_types_and_unloadable_files_are_clear_errors(tmp_path):
    with pytest.raises(ExportError, match="choose quantization types"):
        export_model(tmp_path, tmp_path / "out", ["Q3_XS"])
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ExportError) as raised:
        check_gguf(fake)
    assert raised.value.step == "check"


def test_the_cli_exports_a_base_model(tiny_model, tmp_path, capsys):
    assert cli(["export", str(tiny_model), str(tmp_path / "cli"), "--types", "Q8_0", "--name", "t"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == "Q8_0" and Path(printed[1]).is_file()
    assert cli(["export", str(tmp_path / "missing"), str(tmp_path / "x")]) == 1


def test_a_failed_step_leaves_an_existing_output_file_as_it_was(tmp_path, capsys):
    existing = tmp_path / "model.gguf"
    existing.write_bytes(b"my only copy")
    assert cli(["quantize", str(tmp_path / "missing.gguf"), str(existing), "--type", "Q8_0"]) == 1
    assert cli(["convert", str(tmp_path / "no_such_dir"), str(existing)]) == 1
    assert existing.read_bytes() == b"my only copy"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.gguf"]  # no partial file left


def test_quantizing_a_file_onto_itself_is_refused_before_llama_cpp_truncates_it(tmp_path, capsys):
    import shutil

    from app.serving.default_model import default_gguf_path

    source = tmp_path / "a.gguf"
    shutil.copyfile(default_gguf_path(), source)
    size = source.stat().st_size
    assert cli(["quantize", str(source), str(tmp_path / "." / "a.gguf"), "--type", "Q8_0"]) == 1
    assert "the output file is the input file" in capsys.readouterr().err
    assert source.stat().st_size == size


def test_a_file_where_a_folder_should_be_and_a_path_as_a_name_are_clear_errors(tiny_model, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli(["export", str(tiny_model), str(blocker)]) == 1
    assert cli(["convert", str(tiny_model), str(blocker / "x.gguf")]) == 1
    assert cli(["export", str(tiny_model), str(tmp_path / "out"), "--name", "../escape"]) == 1
    err = capsys.readouterr().err
    assert "cannot create the folder" in err and "must be letters, digits" in err
    assert "Traceback" not in err and not (tmp_path / "escape-F16.gguf").exists()
