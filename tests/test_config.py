import pytest

from lncli.config import load_config, parse_conf, resolve_datadir, resolve_network
from lncli.errors import InputError, UsageError


def test_sections_override_global(tmp_path):
    (tmp_path / "lncli.conf").write_text(
        "# comment\nalias=global\nlisten=127.0.0.1:9735\n[regtest]\nalias=rt  # trailing\nlisten=127.0.0.1:1\nlisten=[::1]:2\n[main]\nalias=mn\n"
    )
    rt = load_config(tmp_path, "regtest", None)
    assert rt.get("alias") == "rt"
    assert rt.get_all("listen") == ["127.0.0.1:1", "[::1]:2"]
    assert load_config(tmp_path, "mainnet", None).get("alias") == "mn"
    assert load_config(tmp_path, "signet", None).get("alias") == "global"


def test_missing_default_conf_is_fine(tmp_path):
    assert load_config(tmp_path, "regtest", None).get("x") is None


def test_missing_explicit_conf_is_an_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path, "regtest", str(tmp_path / "nope.conf"))


@pytest.mark.parametrize("text", ["[bogus]\n", "novalue\n", "=x\n"])
def test_bad_conf(text):
    with pytest.raises(InputError):
        parse_conf(text)


def test_typed_getters(tmp_path):
    (tmp_path / "c").write_text("port=12\nflag=1\nbad=x\n")
    c = load_config(tmp_path, "regtest", str(tmp_path / "c"))
    assert c.get_int("port") == 12 and c.get_bool("flag") is True
    with pytest.raises(InputError):
        c.get_int("bad")


def test_resolve(monkeypatch, tmp_path):
    monkeypatch.setenv("LNCLI_NETWORK", "signet")
    monkeypatch.setenv("LNCLI_DATADIR", str(tmp_path))
    assert resolve_network(None) == "signet"
    assert resolve_network("main") == "mainnet"
    assert resolve_datadir(None) == tmp_path
    with pytest.raises(UsageError):
        resolve_network("litecoin")
