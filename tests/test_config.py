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


def test_node_options_merge_option_over_config_over_default():
    from lncli.config import Config, node_options

    d = node_options(Config({}, None))
    assert (d.listen, d.alias, d.rgb, d.log_level) == (["127.0.0.1:9735"], None, None, "info")
    assert (d.handshake_timeout, d.ping_interval, d.ping_timeout, d.poll_interval, d.event_loop) == (10.0, 30.0, 30.0, None, None)
    conf = Config({"listen": ["127.0.0.1:1", "[::1]:2"], "alias": ["conf"], "rgb": ["#AABBCC"], "log-level": ["DEBUG"],
                   "ping-interval": ["2"], "handshake-timeout": ["3"], "poll-interval": ["0.5"], "event-loop": ["asyncio"]}, None)
    c = node_options(conf)
    assert (c.listen, c.alias, c.rgb, c.log_level) == (["127.0.0.1:1", "[::1]:2"], "conf", "#aabbcc", "debug")
    assert (c.handshake_timeout, c.ping_interval, c.ping_timeout, c.poll_interval, c.event_loop) == (3.0, 2.0, 5.0, 0.5, "asyncio")
    o = node_options(conf, listen=["0.0.0.0:0"], alias="opt", rgb="112233", log_level="warning",
                     handshake_timeout=1.0, ping_interval=1.0, poll_interval=9.0)
    assert (o.listen, o.alias, o.rgb, o.log_level) == (["0.0.0.0:0"], "opt", "#112233", "warning")
    assert (o.handshake_timeout, o.ping_interval, o.ping_timeout, o.poll_interval) == (1.0, 1.0, 1.0, 9.0)


@pytest.mark.parametrize("kw, conf, err, match", [
    (dict(log_level="loud"), {}, UsageError, "--log-level must be one of debug, info, warning, got 'loud'"),
    (dict(), {"log-level": ["loud"]}, UsageError, "--log-level must be one of"),
    (dict(rgb="#12345"), {}, InputError, "rgb must be a colour like #3399ff, got '#12345'"),
    (dict(alias="x" * 33), {}, InputError, "alias must be at most 32 bytes"),
    (dict(ping_interval=0.0), {}, InputError, "timeouts and intervals must be positive"),
    (dict(), {"handshake-timeout": ["-1"]}, InputError, "timeouts and intervals must be positive"),
    (dict(), {"poll-interval": ["soon"]}, InputError, "poll-interval='soon' is not a number of seconds"),
    (dict(poll_interval=3601.0), {}, InputError, "the poll interval must be more than 0 and at most 3600 seconds"),
])
def test_node_options_refusals(kw, conf, err, match):
    from lncli.config import Config, node_options

    with pytest.raises(err, match=match):
        node_options(Config(conf, None), **kw)
