"""The settings table (bootstrap.settings): every row is loaded the same way from the environment
and the settings file, and the rules dockerfile-gen shares behave as documented.

Adding a setting: add its row to `Settings` (or `ReadyChecks`), and its sample to SAMPLES below.
"""
from __future__ import annotations

import json
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from bootstrap.errors import EX_CONFIG, SettingError
from bootstrap.settings import fields, parsers, resolve, table
from bootstrap.settings.parsers import Link, LogLink
from bootstrap.settings.table import ReadyChecks, Settings

PACKAGE = Path(table.__file__).parents[1]

# One valid value per row: (as the environment gives it, as YAML/JSON gives it, the loaded value).
# The loaded value of a home-relative path is relative to APP_HOME (filled in by the test).
SAMPLES: dict[str, tuple[str | None, Any, Any]] = {
    "app_name": ("billing", "billing", "billing"),
    "app_env": ("QA", "QA", "QA"),
    "app_home": (None, None, None),  # the fixture's home; covered by every other test
    "conf_source": ("cfg", "cfg", "<home>/cfg"),
    "conf_target": ("etc/conf", "etc/conf", "<home>/etc/conf"),
    "conf_overlay": ("/srv/configmap", "/srv/configmap", "/srv/configmap"),
    "log_root": ("/srv/logs", "/srv/logs", "/srv/logs"),
    "log_dir": ("{app}/{pod}", "{app}/{pod}", "{app}/{pod}"),
    "log_link": ("var/log", "var/log", "<home>/var/log"),
    "run_dir": ("/srv/run", "/srv/run", "/srv/run"),
    "user": ("1000:1000", 1000, None),  # loaded value checked per source below
    "stop_signal": ("QUIT", "SIGQUIT", int(signal.SIGQUIT)),
    "drain_seconds": ("2.5", 2.5, 2.5),
    "stop_timeout": ("10", 10, 10.0),
    "exit_remap": ("143=0,130=0", {143: 0, 130: 0}, ((130, 0), (143, 0))),
    "thread_dump": ("yes", True, True),
    "exit_on_failed": ("on", True, True),
    "http_port": ("9090", 9090, 9090),
    "live_port": ("9931", 9931, 9931),
    "ready_port": ("9932", 9932, 9932),
    "live_window": ("60", 60, 60.0),
    "image": ("reg/billing:1", "reg/billing:1", "reg/billing:1"),
    "termination_log": ("/srv/term", "/srv/term", "/srv/term"),
    "checker_timeout": ("5", 5, 5.0),
    "jvm": ("OFF", False, "off"),  # YAML 1.1 reads a bare `off` as false
    "reload": ("signal:HUP", "signal:SIGHUP", "signal:SIGHUP"),
    "reload_debounce": ("0.5", 0.5, 0.5),
    "reload_spread": ("30", 30, 30.0),
    "reload_check": ("bin/check-config --strict", ["bin/check-config", "--strict"], ("bin/check-config", "--strict")),
    "start": (None, ["java", "-jar", "b.jar"], ("java", "-jar", "b.jar")),
    "links": (None, [{"source": "a", "target": "/b"}], (Link("a", "/b"),)),
    "log_links": (None, [{"path": "var/t", "subdir": "t"}], (LogLink("<home>/var/t", "t"),)),
    "pod_ip": ("10.1.2.3", None, "10.1.2.3"),
    "pod": ("billing-7d9", None, "billing-7d9"),
    "namespace": ("shop", None, "shop"),
    "node": ("node-1", None, "node-1"),
    "config_file": (None, None, None),  # the fixture's file; tests/unit/test_settings.py covers it
    "log_level": ("DEBUG", None, "debug"),
    "ready.tcp": ("db:5432", "db:5432", ("db", 5432)),
    "ready.http": ("http://127.0.0.1:8080/h", "http://127.0.0.1:8080/h", "http://127.0.0.1:8080/h"),
    "ready.log": ("logs/a.log", "logs/a.log", "<home>/logs/a.log"),
    "ready.pattern": ("Started", "Started", "Started"),
    "ready.cmd": ("test -e x", ["test", "-e", "x"], ("test", "-e", "x")),
    "ready.timeout": ("60", 60, 60.0),
    "ready.period": ("0", 0, 0.0),
}
PAIRED = {"ready.log": ("ready.pattern", "Started"), "ready.pattern": ("ready.log", "logs/a.log")}


def sample_name(row: fields.Setting) -> str:
    return f"ready.{row.name}" if row in table.READY_ROWS else row.name


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "app"
    for env in ("common", "qa", "dev"):
        (home / "conf.d" / env).mkdir(parents=True)
        (home / "cfg" / env).mkdir(parents=True)
    return home


def load(home: Path, tmp_path: Path, env: dict[str, str], data: dict[str, Any]) -> Settings:
    config = tmp_path / "bootstrap.json"
    # the required settings come from the file, so that a row's sample can override them either way
    config.write_text(json.dumps({"app_name": "orders", "app_env": "dev", **data}))  # JSON is YAML too
    return resolve.load({"APP_HOME": str(home), "BOOTSTRAP_CONFIG": str(config), **env})


def value_of(s: Settings, name: str) -> Any:
    return getattr(s.ready, name.removeprefix("ready.")) if name.startswith("ready.") else getattr(s, name)


def expected(home: Path, value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("<home>", str(home))
    if isinstance(value, tuple) and value and isinstance(value[0], LogLink):
        return tuple(LogLink(v.path.replace("<home>", str(home)), v.subdir) for v in value)
    return value


def test_every_row_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(sample_name(row) for row in table.SETTINGS)


@pytest.mark.parametrize("row", table.SETTINGS, ids=sample_name)
def test_each_row_loads_from_environment_and_file(row: fields.Setting, home: Path, tmp_path: Path) -> None:
    name = sample_name(row)
    env_text, yaml_value, loaded = SAMPLES[name]
    if name == "user":  # a uid from YAML is an int; it is loaded as its text
        loaded = "1000:1000"
    partner = PAIRED.get(name)
    extra_env = {table.READY_ROWS[table.READY_KEYS.index(partner[0][6:])].env or "": partner[1]} if partner else {}
    extra_yaml = {"ready": {partner[0][6:]: partner[1]}} if partner else {}
    if row.env and env_text is not None:
        s = load(home, tmp_path, {row.env: env_text, **extra_env}, {})
        assert value_of(s, name) == expected(home, loaded)
    if row.key and yaml_value is not None:
        data: dict[str, Any] = {}
        if row in table.READY_ROWS:
            data["ready"] = {row.name: yaml_value, **extra_yaml.get("ready", {})}
        else:
            data[row.name] = yaml_value
        s = load(home, tmp_path, {}, data)
        assert value_of(s, name) == expected(home, "1000" if name == "user" else loaded)
        if row.env and env_text is not None:  # the environment wins; an empty variable is unset
            s = load(home, tmp_path, {row.env: env_text, **extra_env}, data)
            assert value_of(s, name) == expected(home, loaded)
            s = load(home, tmp_path, {row.env: ""}, data)
            if name in table.EMPTY_MEANS_NONE:  # but `BOOTSTRAP_USER=` means "no switch": it clears the file's
                assert value_of(s, name) is None
            else:
                assert value_of(s, name) == expected(home, "1000" if name == "user" else loaded)
    if not row.key:  # env-only rows are not keys of the settings file
        with pytest.raises(SettingError, match=f"unknown key '{row.name}'"):
            load(home, tmp_path, {}, {row.name: env_text or "x"})


def test_defaults_are_the_table_defaults(home: Path, tmp_path: Path) -> None:
    s = load(home, tmp_path, {}, {})
    for row in table.SETTINGS:
        if row.required or row.name in ("app_home", "config_file"):
            continue
        default = row.default
        if row.home_relative and default is not None:
            default = f"{home}/{default}"
        owner: Any = s.ready if row in table.READY_ROWS else s
        assert getattr(owner, row.name) == default, row


def test_record_defaults_come_from_the_table() -> None:
    bare = Settings(app_name="a", app_env="b", env="b")
    for row in table.SETTING_ROWS:
        if not row.required:
            assert getattr(bare, row.name) == row.default
    assert ReadyChecks() == ReadyChecks(**{row.name: row.default for row in table.READY_ROWS})
    assert ReadyChecks().timeout == parsers.DEFAULT_READY_TIMEOUT == 300.0


def test_rows_are_complete_and_named_by_convention() -> None:
    for row in table.SETTINGS:
        assert row.doc and row.allowed and (row.env or row.key), row
        if row.env and row.key:  # BOOTSTRAP_<KEY>, or APP_<...> for the app's own variables
            assert row.env.lower() in (row.key.replace(".", "_"), "bootstrap_" + row.key.replace(".", "_")), row
    envs = [row.env for row in table.SETTINGS if row.env]
    assert len(envs) == len(set(envs))


def test_every_variable_is_written_out_in_the_package() -> None:
    """`grep BOOTSTRAP_READY_TIMEOUT bootstrap/` finds the row: no name is built at run time."""
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    for row in table.SETTINGS:
        if row.env:
            assert f'"{row.env}"' in source, row.env
    assert not re.search(r"(BOOTSTRAP|APP)_[A-Z_]*\{", source)  # e.g. f"BOOTSTRAP_READY_{key.upper()}"


def test_setting_row_lookup() -> None:
    assert table.setting_row("ready.timeout").env == "BOOTSTRAP_READY_TIMEOUT"
    assert table.setting_row("stop_timeout").env == "BOOTSTRAP_STOP_TIMEOUT"
    assert table.setting_row("pod_ip").env == "POD_IP"
    for missing in ("timeout", "ready", "nope"):
        with pytest.raises(KeyError):
            table.setting_row(missing)


def test_yaml_keys_are_the_table() -> None:
    assert table.YAML_KEYS == {row.key for row in table.SETTING_ROWS if row.key} | {"ready"}
    assert table.READY_KEYS == ("tcp", "http", "log", "pattern", "cmd", "timeout", "period")


# --- the rules dockerfile-gen shares ---------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "orders", "order-service.v2", "a_b", "x" * 63, "0abc9",
                                  "Orders", "-orders", "orders-", "x" * 64, "a/b", "a b", "über", "a\n"])
def test_app_name_rule_is_its_pattern(name: str) -> None:
    """parse_app_name checks APP_NAME_PATTERN without re (on the stripped text, like every value);
    the pattern is what the chart and the docs use."""
    matches = re.fullmatch(parsers.APP_NAME_PATTERN.strip("^$"), name.strip()) is not None
    try:
        parsers.parse_app_name(name, "name")
        accepted = True
    except SettingError as exc:
        accepted = False
        assert (exc.field, exc.code) == ("name", EX_CONFIG)
        assert exc.reason.startswith("use 1-63 of a-z")
    assert accepted == matches


@pytest.mark.parametrize(("value", "ok"), [
    ("app", True), ("_svc-1", True), (1000, True), ("1000:1000", True), ("4294967294", True),
    ("Root", False), ("1000:", False), ("-1", False), ("12345678901", False), ("a" * 33, False),
])
def test_parse_user(value: Any, ok: bool) -> None:
    if ok:
        assert parsers.parse_user(value, "user") == str(value)
    else:
        with pytest.raises(SettingError) as info:
            parsers.parse_user(value, "user")
        assert info.value.field == "user" and "uid[:gid]" in info.value.reason
        assert str(info.value) == f"user={value!r} is invalid: {info.value.reason}"


@pytest.mark.parametrize(("name", "env"), [("prod", "prod"), ("Production", "prod"), ("PRD", "prod"),
                                           ("development", "dev"), ("QA", "qa"), ("staging", "staging")])
def test_canonical_env(name: str, env: str) -> None:
    assert parsers.canonical_env(name) == env


def test_parse_ready_defaults_and_values() -> None:
    assert table.parse_ready({}) == ReadyChecks(timeout=300.0, period=10.0)
    ready = table.parse_ready({"tcp": 8080, "http": "http://127.0.0.1:8080/h", "log": "logs/a.log",
                                  "pattern": "Started", "cmd": ["true"], "timeout": 60, "period": 0})
    assert ready == ReadyChecks(tcp=("127.0.0.1", 8080), http="http://127.0.0.1:8080/h", log="logs/a.log",
                                pattern="Started", cmd=("true",), timeout=60.0, period=0.0)


@pytest.mark.parametrize(("value", "field", "reason"), [
    (8080, "ready", "must be a mapping with keys tcp, http, log, pattern, cmd, timeout, period"),
    ({"tpc": 8080}, "ready.tpc", "unknown key; allowed: tcp, http"),
    ({"tcp": "host:"}, "ready.tcp", "use PORT or HOST:PORT"),
    ({"http": "ftp://x/"}, "ready.http", "expected an http:// or https:// URL"),
    ({"timeout": "soon"}, "ready.timeout", "expected a number of seconds"),
    ({"period": -1}, "ready.period", "expected a number of seconds >= 0"),
    ({"log": "a.log"}, "ready.pattern", "ready.log and ready.pattern must be set together"),
    ({"pattern": "x"}, "ready.log", "ready.log and ready.pattern must be set together"),
    ({"pattern": "(", "log": "a.log"}, "ready.pattern", "not a valid Python regex"),
])
def test_parse_ready_errors_name_the_field(value: Any, field: str, reason: str) -> None:
    with pytest.raises(SettingError) as info:
        table.parse_ready(value)
    assert info.value.field == field and info.value.reason.startswith(reason)
    assert field in str(info.value) and "\n" not in str(info.value)


def test_parse_ready_names_the_callers_field() -> None:
    with pytest.raises(SettingError) as info:
        table.parse_ready({"timeout": "x"}, "env_overrides.prod.ready")
    assert info.value.field == "env_overrides.prod.ready.timeout"
