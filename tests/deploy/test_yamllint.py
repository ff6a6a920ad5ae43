"""Every YAML file under deploy/ is clean by deploy/.yamllint."""

from pathlib import Path

from yamllint import linter
from yamllint.config import YamlLintConfig

from .paths import DEPLOY

CONFIG = YamlLintConfig(file=str(DEPLOY / ".yamllint"))


def problems(path: Path) -> list[str]:
    return [
        f"{path.relative_to(DEPLOY)}:{p.line}:{p.column} {p.desc} ({p.rule})"
        for p in linter.run(path.read_text(encoding="utf-8"), CONFIG, str(path))
    ]


def test_deploy_yaml_is_yamllint_clean() -> None:
    files = sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})
    assert len(files) >= 15
    found = [line for path in files for line in problems(path)]
    assert not found, "\n".join(found)


def test_yamllint_config_catches_duplicate_keys_and_bad_indentation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\nlist:\n- x\n   - y\n", encoding="utf-8")
    assert problems_outside(bad)


def problems_outside(path: Path) -> list[str]:
    return [p.desc for p in linter.run(path.read_text(encoding="utf-8"), CONFIG, str(path))]
