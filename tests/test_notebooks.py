"""The notebooks in ``notebooks/``: committed without outputs and with a ``parameters`` cell
(fast), and executed top to bottom on the CPU with a few training steps (slow).

The executed copies, with their outputs, are written under pytest's ``tmp_path``.
"""

import json
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"

#: What CI runs each notebook with: a few steps, small models, the offline encoder, no TPU.
SMOKE = {
    "quickstart": {"steps": 8, "tiny": True, "bert_encoder": "minilm_l6_h384",
                   "on_colab": False},
    "colab_tpu": {"strategy": "default", "bert_encoder": "minilm_l6_h384", "bert_steps": 4,
                  "gru_steps": 8, "tiny": True, "on_colab": False},
}


def _read(name: str) -> dict:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def _parameters_index(cells: list) -> int:
    tagged = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
    return tagged[0]


def test_every_notebook_is_listed():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMOKE)


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_committed_without_outputs(name):
    for n, cell in enumerate(_read(name)["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name}.ipynb cell {n} has outputs"
            assert cell["execution_count"] is None, f"{name}.ipynb cell {n} has a count"
        assert "attachments" not in cell or not cell["attachments"], f"cell {n}"


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_has_a_parameters_cell_that_sets_what_ci_passes(name):
    cells = _read(name)["cells"]
    cell = cells[_parameters_index(cells)]
    assert cell["cell_type"] == "code"
    source = "".join(cell["source"])
    assigned = {line.split("=")[0].strip() for line in source.splitlines()
                if "=" in line and not line.lstrip().startswith("#")}
    assert set(SMOKE[name]) | {"data_dir", "run_root"} <= assigned, assigned


def _execute(name: str, parameters: dict, tmp_path: pathlib.Path, monkeypatch):
    """Runs the notebook with PARAMETERS injected after its parameters cell, in a kernel on
    this interpreter, in the repository root; returns the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    kernel = tmp_path / "jupyter" / "kernels" / "keras-papers-test"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "keras-papers test", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    nb = nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{key} = {value!r}" for key, value in parameters.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(_parameters_index(nb.cells) + 1, injected)
    client = NotebookClient(nb, kernel_name="keras-papers-test", timeout=900,
                            resources={"metadata": {"path": str(REPO)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, str(tmp_path / f"{name}.executed.ipynb"))
    return nb


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if kind in o.get("data", {})]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_runs_top_to_bottom(name, data_dir, cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_PAPERS_CACHE_DIR", cache_dir)
    runs = tmp_path / "runs"
    nb = _execute(name, {**SMOKE[name], "data_dir": data_dir, "run_root": str(runs)},
                  tmp_path, monkeypatch)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    results = sorted(p.relative_to(runs).parts[0] for p in runs.rglob("results.json"))
    tables = "\n".join(o["data"]["text/markdown"] for o in _outputs(nb, "text/markdown"))
    if name == "quickstart":
        assert results == ["baselines", "cho2014", "devlin2019", "rocktaschel2016", "xu2015"]
        # the learning curve, the NLI heat map and the caption's attention
        assert len(_outputs(nb, "image/png")) >= 3
        for paper in ("baselines", "cho2014", "devlin2019", "rocktaschel2016", "xu2015"):
            assert f"| {paper}/" in tables, paper
    else:
        assert len(results) == 2
        assert "| devlin2019/sst2" in tables and "| cho2014/sst2_gru" in tables
        for config in runs.rglob("config.json"):
            assert "--static_shapes" in json.loads(config.read_text())["command"]
