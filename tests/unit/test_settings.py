"""resolve.load: defaults < YAML < environment, validation, APP_ENV matching. Real files in tmp_path."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bootstrap.errors import EX_CONFIG, EX_USAGE, BootstrapError
from bootstrap.settings import parsers, resolve
from bootstrap.settings.parsers import Link, LogLink
from bootstrap.settings.table import ReadyChecks


def make_home(root: Path, envs: tuple[str, ...] = ("dev", "qa", "prod")) -> Path:
    home = root / "app"
    (home / "conf.d" / "common").mkdir(parents=True)
    for env in envs:
        (home / "conf.d" / env).mkdir()
    return home


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    home = make_home(tmp_path)
    config = tmp_path / "bootstrap.yaml"
    config.write_text("")
    return {"APP_NAME": "orders", "APP_ENV": "dev", "APP_HOME": str(home), "BOOTSTRAP_CONFIG": str(config)}


def write_yaml(environ: dict[str, str], text: str) -> None:
    Path(environ["BOOTSTRAP_CONFIG"]).write_text(text)


def error_of(environ: dict[str, str]) -> BootstrapError:
    with pytest.raises(BootstrapError) as info:
        resolve.load(environ)
    return info.value


# --- defaults and precedence ---------------------------------------------------------------


def test_defaults(environ: dict[str, str]) -> None:
    s = resolve.load(environ)
    home = environ["APP_HOME"]
    assert (s.app_name, s.app_env, s.env) == ("orders", "dev", "dev")
    assert s.conf_source == f"{home}/conf.d"
    assert s.conf_target == f"{home}/conf"
    assert s.log_link == f"{home}/logs"
    assert (s.log_root, s.log_dir, s.run_dir) == ("/data/logs", "{app}/{ip}", "/run/bootstrap")
    assert s.user is None
    assert (s.stop_signal, s.drain_seconds, s.stop_timeout, s.exit_remap) == (signal.SIGTERM, 0.0, 30.0, ())
    assert s.ready == ReadyChecks() and not s.ready.any
    assert (s.ready.timeout, s.ready.period) == (300.0, 10.0)
    assert (s.start, s.links, s.log_links) == ((), (), ())
    assert s.config_file == environ["BOOTSTRAP_CONFIG"]


def test_settings_are_frozen(environ: dict[str, str]) -> None:
    s = resolve.load(environ)
    with pytest.raises(AttributeError):
        s.app_name = "other"  # type: ignore[misc]


def test_default_config_path_missing_means_defaults(environ: dict[str, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "DEFAULT_CONFIG", str(tmp_path / "absent.yaml"))
    del environ["BOOTSTRAP_CONFIG"]
    assert resolve.load(environ).config_file is None


def test_default_config_path_is_read_when_present(environ: dict[str, str], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    default = tmp_path / "etc-bootstrap.yaml"
    default.write_text("stop_timeout: 7\n")
    monkeypatch.setattr(resolve, "DEFAULT_CONFIG", str(default))
    del environ["BOOTSTRAP_CONFIG"]
    s = resolve.load(environ)
    assert (s.stop_timeout, s.config_file) == (7.0, str(default))


def test_yaml_values_apply(environ: dict[str, str], tmp_path: Path) -> None:
    write_yaml(environ, f"""
conf_source: conf.d
conf_target: etc/conf
log_root: {tmp_path}/logs
log_dir: "{{app}}/{{env}}/{{ip}}"
log_link: var/log
run_dir: {tmp_path}/run
user: "1000:1000"
stop_signal: QUIT
drain_seconds: 2.5
stop_timeout: 10
exit_remap: {{143: 0, 130: 0}}
http_port: 9090
image: reg/orders:1
start: java -jar "app with space.jar"
ready:
  tcp: 8080
  http: http://127.0.0.1:8080/health
  log: logs/app.log
  pattern: Started .* in
  cmd: [sh, -c, "exit 0"]
  timeout: 60
  period: 0
links:
  - {{source: "conf.d/{{env}}/server.xml", target: /srv/server.xml}}
log_links:
  - {{path: /var/log/tomcat10, subdir: tomcat}}
""")
    s = resolve.load(environ)
    home = environ["APP_HOME"]
    assert s.conf_target == f"{home}/etc/conf"
    assert (s.log_root, s.log_dir, s.log_link) == (f"{tmp_path}/logs", "{app}/{env}/{ip}", f"{home}/var/log")
    assert (s.run_dir, s.user, s.stop_signal) == (f"{tmp_path}/run", "1000:1000", signal.SIGQUIT)
    assert (s.drain_seconds, s.stop_timeout, s.exit_remap) == (2.5, 10.0, ((130, 0), (143, 0)))
    assert (s.http_port, s.image) == (9090, "reg/orders:1")
    assert s.start == ("java", "-jar", "app with space.jar")
    assert s.ready == ReadyChecks(tcp=("127.0.0.1", 8080), http="http://127.0.0.1:8080/health",
                                  log=f"{home}/logs/app.log", pattern="Started .* in",
                                  cmd=("sh", "-c", "exit 0"), timeout=60.0, period=0.0)
    assert s.links == (Link("conf.d/{env}/server.xml", "/srv/server.xml"),)
    assert s.log_links == (LogLink("/var/log/tomcat10", "tomcat"),)


def test_environment_wins_over_yaml(environ: dict[str, str]) -> None:
    write_yaml(environ, "app_name: fromyaml\nstop_timeout: 10\nready: {tcp: 8080, timeout: 5}\n")
    environ.update(BOOTSTRAP_STOP_TIMEOUT="20", BOOTSTRAP_READY_TCP="db:5432")
    s = resolve.load(environ)
    assert (s.app_name, s.stop_timeout) == ("orders", 20.0)
    assert (s.ready.tcp, s.ready.timeout) == (("db", 5432), 5.0)


def test_empty_environment_value_means_unset(environ: dict[str, str]) -> None:
    write_yaml(environ, "stop_timeout: 10\n")
    environ["BOOTSTRAP_STOP_TIMEOUT"] = ""
    assert resolve.load(environ).stop_timeout == 10.0


def test_app_name_and_env_may_come_from_yaml(environ: dict[str, str]) -> None:
    write_yaml(environ, "app_name: billing\napp_env: QA\n")
    del environ["APP_NAME"], environ["APP_ENV"]
    s = resolve.load(environ)
    assert (s.app_name, s.app_env, s.env) == ("billing", "QA", "qa")


def test_empty_yaml_file_is_valid(environ: dict[str, str]) -> None:
    write_yaml(environ, "# only a comment\n")
    assert resolve.load(environ).stop_timeout == 30.0


def test_start_exec_form(environ: dict[str, str]) -> None:
    write_yaml(environ, "start: [java, -jar, /app/app.jar]\n")
    assert resolve.load(environ).start == ("java", "-jar", "/app/app.jar")


def test_absolute_conf_source_may_be_anywhere(environ: dict[str, str], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "prod").mkdir(parents=True)
    environ.update(BOOTSTRAP_CONF_SOURCE=str(elsewhere), APP_ENV="prod")
    s = resolve.load(environ)
    assert (s.conf_source, s.env) == (str(elsewhere), "prod")


@pytest.mark.parametrize("value", ["TERM", "SIGTERM", "15", "term", "sigterm"])
def test_stop_signal_forms(environ: dict[str, str], value: str) -> None:
    environ["BOOTSTRAP_STOP_SIGNAL"] = value
    assert resolve.load(environ).stop_signal == signal.SIGTERM


@pytest.mark.parametrize(("value", "expected"), [
    ("8080", ("127.0.0.1", 8080)),
    ("db.local:5432", ("db.local", 5432)),
    ("[::1]:8080", ("::1", 8080)),
])
def test_ready_tcp_forms(environ: dict[str, str], value: str, expected: tuple[str, int]) -> None:
    environ["BOOTSTRAP_READY_TCP"] = value
    assert resolve.load(environ).ready.tcp == expected


def test_exit_remap_and_remap(environ: dict[str, str]) -> None:
    environ["BOOTSTRAP_EXIT_REMAP"] = "143=0, 130=0"
    s = resolve.load(environ)
    assert s.exit_remap == ((130, 0), (143, 0))
    assert (s.remap(143), s.remap(130), s.remap(1)) == (0, 0, 1)


def test_ready_cmd_is_split_with_shlex(environ: dict[str, str]) -> None:
    environ["BOOTSTRAP_READY_CMD"] = "sh -c 'test -f /tmp/x'"
    assert resolve.load(environ).ready.cmd == ("sh", "-c", "test -f /tmp/x")


def test_downward_api_values(environ: dict[str, str]) -> None:
    environ.update(POD_IP="10.1.2.3", POD_NAME="orders-7d9", POD_NAMESPACE="shop", NODE_NAME="node-1")
    s = resolve.load(environ)
    assert (s.pod_ip, s.pod, s.namespace, s.node) == ("10.1.2.3", "orders-7d9", "shop", "node-1")


# --- APP_NAME and APP_ENV ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "orders", "order-service.v2", "a_b", "x" * 63, "0abc9"])
def test_good_app_names(environ: dict[str, str], name: str) -> None:
    environ["APP_NAME"] = name
    assert resolve.load(environ).app_name == name


@pytest.mark.parametrize("name", ["Orders", "-orders", "orders-", "orders.", "x" * 64, "a/b", "a b", "über"])
def test_bad_app_names(environ: dict[str, str], name: str) -> None:
    environ["APP_NAME"] = name
    err = error_of(environ)
    assert err.code == EX_CONFIG and "APP_NAME" in str(err)


@pytest.mark.parametrize(("value", "expected"), [
    ("dev", "dev"), ("DEV", "dev"), ("Qa", "qa"), ("PROD", "prod"),
    ("production", "prod"), ("PRODUCTION", "prod"), ("prd", "prod"), ("Prd", "prod"),
    ("development", "dev"), ("Development", "dev"),
])
def test_app_env_case_and_aliases(environ: dict[str, str], value: str, expected: str) -> None:
    environ["APP_ENV"] = value
    s = resolve.load(environ)
    assert (s.app_env, s.env) == (value, expected)


def test_app_env_matches_directory_spelled_differently(tmp_path: Path) -> None:
    """The directory name is what {env} becomes, whatever case or alias APP_ENV used."""
    home = tmp_path / "app"
    (home / "conf.d" / "PROD").mkdir(parents=True)
    assert resolve.load({"APP_NAME": "a", "APP_ENV": "prd", "APP_HOME": str(home)}).env == "PROD"
    home2 = tmp_path / "app2"
    (home2 / "conf.d" / "production").mkdir(parents=True)
    assert resolve.load({"APP_NAME": "a", "APP_ENV": "prod", "APP_HOME": str(home2)}).env == "production"


def test_unknown_app_env_lists_available(environ: dict[str, str]) -> None:
    environ["APP_ENV"] = "staging"
    err = error_of(environ)
    assert err.code == EX_CONFIG
    assert "APP_ENV" in str(err) and "staging" in str(err)
    assert "available: dev, prod, qa" in str(err)
    assert "common" not in str(err).split("available:")[1]


def test_common_is_not_an_environment(environ: dict[str, str]) -> None:
    environ["APP_ENV"] = "common"
    assert "APP_ENV" in str(error_of(environ))


def test_missing_conf_source(environ: dict[str, str], tmp_path: Path) -> None:
    environ["APP_HOME"] = str(tmp_path / "nohome")
    err = error_of(environ)
    assert err.code == EX_CONFIG and f"{tmp_path}/nohome/conf.d" in str(err)
    assert "BOOTSTRAP_CONF_SOURCE" in str(err)


@pytest.mark.parametrize("var", ["APP_NAME", "APP_ENV"])
def test_required_variables(environ: dict[str, str], var: str) -> None:
    del environ[var]
    err = error_of(environ)
    assert err.code == EX_CONFIG and f"{var} is not set" in str(err)


# --- malformed values: exit 78, message names the variable and what is allowed ---------------

BAD_VALUES = [
    ("BOOTSTRAP_STOP_SIGNAL", "NOPE"),
    ("BOOTSTRAP_STOP_SIGNAL", "0"),
    ("BOOTSTRAP_STOP_SIGNAL", "KILL"),
    ("BOOTSTRAP_STOP_SIGNAL", "SIGSTOP"),
    ("BOOTSTRAP_STOP_SIGNAL", "999"),
    ("BOOTSTRAP_DRAIN_SECONDS", "five"),
    ("BOOTSTRAP_DRAIN_SECONDS", "-1"),
    ("BOOTSTRAP_STOP_TIMEOUT", "nan"),
    ("BOOTSTRAP_STOP_TIMEOUT", "inf"),
    ("BOOTSTRAP_CHECKER_TIMEOUT", "1s"),
    ("BOOTSTRAP_READY_TIMEOUT", "soon"),
    ("BOOTSTRAP_READY_PERIOD", "-0.5"),
    ("BOOTSTRAP_EXIT_REMAP", "143"),
    ("BOOTSTRAP_EXIT_REMAP", "143=x"),
    ("BOOTSTRAP_EXIT_REMAP", "300=0"),
    ("BOOTSTRAP_EXIT_REMAP", "143=0=1"),
    ("BOOTSTRAP_READY_TCP", "http"),
    ("BOOTSTRAP_READY_TCP", "0"),
    ("BOOTSTRAP_READY_TCP", "65536"),
    ("BOOTSTRAP_READY_TCP", ":8080"),
    ("BOOTSTRAP_READY_TCP", "host:"),
    ("BOOTSTRAP_READY_HTTP", "127.0.0.1:8080/health"),
    ("BOOTSTRAP_READY_HTTP", "ftp://x/"),
    ("BOOTSTRAP_READY_HTTP", "http://"),
    ("BOOTSTRAP_READY_CMD", "sh -c 'unbalanced"),
    ("BOOTSTRAP_USER", "Root"),
    ("BOOTSTRAP_USER", "1000:"),
    ("BOOTSTRAP_USER", "-1"),
    ("BOOTSTRAP_HTTP_PORT", "http"),
    ("BOOTSTRAP_HTTP_PORT", "0"),
    ("BOOTSTRAP_HTTP_PORT", "70000"),
    ("BOOTSTRAP_THREAD_DUMP", "maybe"),
    ("BOOTSTRAP_LOG_DIR", "{app}/{bogus}"),
    ("BOOTSTRAP_LOG_DIR", "/abs/{ip}"),
    ("BOOTSTRAP_LOG_DIR", "{app}/../{ip}"),
    ("BOOTSTRAP_LOG_DIR", "{app}/{ip"),
    ("BOOTSTRAP_LOG_ROOT", "relative/logs"),
    ("BOOTSTRAP_RUN_DIR", "run"),
    ("APP_HOME", "app"),
]


@pytest.mark.parametrize(("var", "value"), BAD_VALUES)
def test_malformed_value(environ: dict[str, str], var: str, value: str) -> None:
    environ[var] = value
    err = error_of(environ)
    assert err.code == EX_CONFIG
    assert str(err).startswith(f"{var}={value!r} is invalid: ")


def test_bad_pattern_is_named(environ: dict[str, str]) -> None:
    environ.update(BOOTSTRAP_READY_LOG="logs/app.log", BOOTSTRAP_READY_PATTERN="Started (")
    err = error_of(environ)
    assert err.code == EX_CONFIG and "BOOTSTRAP_READY_PATTERN" in str(err) and "regex" in str(err)


@pytest.mark.parametrize("var", ["BOOTSTRAP_READY_LOG", "BOOTSTRAP_READY_PATTERN"])
def test_log_and_pattern_go_together(environ: dict[str, str], var: str) -> None:
    environ[var] = "x"
    err = error_of(environ)
    assert "BOOTSTRAP_READY_LOG and BOOTSTRAP_READY_PATTERN" in str(err)


def test_log_dir_error_lists_allowed_placeholders(environ: dict[str, str]) -> None:
    environ["BOOTSTRAP_LOG_DIR"] = "{app}/{container}"
    message = str(error_of(environ))
    assert "{container}" in message
    for name in parsers.LOG_PLACEHOLDERS:
        assert "{%s}" % name in message


# --- the settings file ---------------------------------------------------------------------


def test_explicit_config_missing(environ: dict[str, str], tmp_path: Path) -> None:
    environ["BOOTSTRAP_CONFIG"] = str(tmp_path / "nope.yaml")
    err = error_of(environ)
    assert err.code == EX_CONFIG and "BOOTSTRAP_CONFIG" in str(err) and "nope.yaml" in str(err)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_yaml_not_a_mapping(environ: dict[str, str], text: str) -> None:
    write_yaml(environ, text)
    err = error_of(environ)
    assert err.code == EX_CONFIG and "must be a YAML mapping" in str(err)
    assert environ["BOOTSTRAP_CONFIG"] in str(err)


def test_invalid_yaml_names_file_and_line(environ: dict[str, str]) -> None:
    write_yaml(environ, "app_name: ok\nready: {tcp: [\n")
    err = error_of(environ)
    assert "not valid YAML" in str(err) and environ["BOOTSTRAP_CONFIG"] in str(err) and "line" in str(err)


def test_unknown_yaml_key(environ: dict[str, str]) -> None:
    write_yaml(environ, "stop_timout: 5\n")
    err = error_of(environ)
    assert "unknown key 'stop_timout'" in str(err) and "stop_timeout" in str(err)


def test_unknown_ready_key(environ: dict[str, str]) -> None:
    write_yaml(environ, "ready:\n  tpc: 8080\n")
    err = error_of(environ)
    assert "unknown key 'ready.tpc'" in str(err) and "tcp" in str(err)


def test_ready_not_a_mapping(environ: dict[str, str]) -> None:
    write_yaml(environ, "ready: 8080\n")
    assert "ready in" in str(error_of(environ))


def test_bad_yaml_value_names_key_and_file(environ: dict[str, str]) -> None:
    write_yaml(environ, "stop_signal: NOPE\n")
    message = str(error_of(environ))
    assert message.startswith(f"stop_signal in {environ['BOOTSTRAP_CONFIG']}=")


def test_bad_yaml_ready_value_names_key(environ: dict[str, str]) -> None:
    write_yaml(environ, "ready: {http: not-a-url}\n")
    assert str(error_of(environ)).startswith("ready.http in ")


@pytest.mark.parametrize("text", [
    "links: {source: a, target: b}\n",
    "links: [{source: a}]\n",
    "links: [{source: a, target: b, extra: c}]\n",
    "log_links: [x]\n",
    "start: []\n",
    "start: {java: 1}\n",
])
def test_bad_list_keys(environ: dict[str, str], text: str) -> None:
    write_yaml(environ, text)
    assert error_of(environ).code == EX_CONFIG


def test_require_command(environ: dict[str, str]) -> None:
    s = resolve.load(environ)
    assert resolve.require_command(s, ["java"]) == ("java",)
    with pytest.raises(BootstrapError) as info:
        resolve.require_command(s, [])
    assert info.value.code == EX_USAGE


def test_run_dir_from_reads_only_its_variable() -> None:
    from bootstrap.cli import run_dir_from

    assert run_dir_from({}) == "/run/bootstrap"
    assert run_dir_from({"BOOTSTRAP_RUN_DIR": "/x", "BOOTSTRAP_CONFIG": "/nope"}) == "/x"


def test_relative_log_links_path_is_under_app_home(environ: dict[str, str]) -> None:
    write_yaml(environ, "log_links: [{path: var/log/tomcat, subdir: tomcat}]\n")
    assert resolve.load(environ).log_links == (LogLink(f"{environ['APP_HOME']}/var/log/tomcat", "tomcat"),)


def test_jvm_defaults_to_auto_and_takes_off(environ: dict[str, str]) -> None:
    assert resolve.load(environ).jvm == "auto"
    assert resolve.load({**environ, "BOOTSTRAP_JVM": "OFF"}).jvm == "off"
    write_yaml(environ, "jvm: off\n")
    assert resolve.load(environ).jvm == "off"
    assert resolve.load({**environ, "BOOTSTRAP_JVM": "auto"}).jvm == "auto"  # the environment wins


def test_jvm_rejects_anything_else_naming_the_variable(environ: dict[str, str]) -> None:
    message = str(error_of({**environ, "BOOTSTRAP_JVM": "on"}))
    assert message.startswith("BOOTSTRAP_JVM='on' is invalid") and "auto" in message and "off" in message
