import pytest


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Every data test starts from an empty data root and cache, whatever the caller's environment."""
    monkeypatch.setenv("NBH_DATA_ROOT", str(tmp_path / "empty_root"))
    monkeypatch.setenv("NBH_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("NBH_DATA_POLICY", "NBH_SEED"):
        monkeypatch.delenv(name, raising=False)
