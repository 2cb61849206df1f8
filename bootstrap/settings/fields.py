"""The settings table's field system: `setting(...)` declares one row, `@table` makes a frozen
record of the rows, `rows` lists them in order."""
from __future__ import annotations

from bootstrap.frozen import MISSING, Field, dataclass_transform, frozen
from bootstrap.typecheck import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")
    Parser = Callable[[Any, str], Any]


class Setting(Field):
    """One row of the settings table: a field of `Settings` or `ReadyChecks`.

    name: the field; key: the YAML key (`ready.` + name for a check), None when only the
    environment sets it; env: the environment variable, None when only the file sets it;
    parse(value, where): validates and converts, raising SettingError naming `where`;
    default: MISSING for a required setting; allowed: the accepted values, for people;
    doc: one line; home_relative: a relative value is relative to APP_HOME.
    """

    __slots__ = ("env", "parse", "default", "allowed", "doc", "yaml", "home_relative", "name", "key")

    def __init__(self, env: str | None, parse: Parser, default: Any, allowed: str, doc: str,
                 yaml: bool, home_relative: bool) -> None:
        self.env = env
        self.parse = parse
        self.default = default
        self.allowed = allowed
        self.doc = doc
        self.yaml = yaml
        self.home_relative = home_relative
        self.name = ""
        self.key: str | None = None

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        section = owner.__dict__.get("SECTION")
        if self.yaml:
            self.key = f"{section}.{name}" if section else name

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def where_in(self, config_file: str) -> str:
        """How an error names this setting's value in a settings file."""
        return f"{self.key} in {config_file}"

    def __repr__(self) -> str:
        return f"Setting({self.key or self.name!r}, env={self.env!r}, default={self.default!r})"


def setting(env: str | None, parse: Parser, allowed: str, doc: str, *, default: Any = MISSING,
            yaml: bool = True, home_relative: bool = False) -> Any:
    """Declares one setting as a field of a `@table` class: `env` is its environment variable
    (None: the settings file only), `yaml=False` keeps it out of the settings file, a setting
    without `default` is required. See `Setting` for the columns."""
    return Setting(env, parse, default, allowed, doc, yaml, home_relative)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(setting,))
def table(cls: type[T]) -> type[T]:
    """A frozen record whose `setting(...)` fields are rows of the settings table."""
    return frozen(cls)


def rows(cls: type) -> tuple[Setting, ...]:
    """The rows a `@table` class declares, in order."""
    return tuple(v for v in vars(cls).values() if isinstance(v, Setting))
