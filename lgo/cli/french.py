"""The `lgo` command speaks French, Typer's own words included.

Typer marks some of its texts for gettext (``from gettext import gettext as _``) but ships no French
catalogue, and gettext would follow the machine's locale (often C on a counter PC); the Click it
vendors (``typer._click``) writes its texts in plain f-strings. lgo always answers in French, so
this module, imported once by ``lgo.cli.main``, gives Typer a fixed French catalogue (its ``_`` looks
the message up here and falls back to the original), sets its panel titles (computed at import
time), and wraps the three places where the vendored Click writes English: the help option's
text, the "Usage:" prefix and the usage errors.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import typer.core
from typer._click import decorators as click_decorators
from typer._click import formatting as click_formatting

# What typer.core passes to gettext.
FRENCH: dict[str, str] = {
    "Aborted!": "Interrompu.",
    "Arguments": "Arguments",
    "Options": "Options",
    "No such command {name!r}.": "Commande inconnue : {name!r}.",
    "default: {default}": "défaut : {default}",
    "required": "obligatoire",
    "env var: {var}": "variable : {var}",
    "(dynamic)": "(calculé)",
}


def french(message: str) -> str:
    return FRENCH.get(message, message)


# The vendored Click's usage errors, as rich_format_error shows them.
ERRORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Missing argument '(.+)'\.$"), r"Argument manquant : '\1'."),
    (re.compile(r"^Missing option '(.+)'\.$"), r"Option manquante : '\1'."),
    (re.compile(r"^Missing parameter '(.+)'\.$"), r"Paramètre manquant : '\1'."),
    (re.compile(r"^No such option: (.+)$"), r"Option inconnue : \1"),
    (re.compile(r"^Invalid value for (.+?): (.+)$", re.DOTALL), r"Valeur invalide pour \1 : \2"),
    (re.compile(r"^Invalid value: (.+)$", re.DOTALL), r"Valeur invalide : \1"),
    (re.compile(r"^Got unexpected extra argument\(s\) \((.+)\)$"), r"Argument(s) en trop (\1)"),
    (re.compile(r"^Option '(.+)' requires an argument\.$"), r"L'option '\1' demande une valeur."),
]
HELP_TEXT = "Afficher cette aide et quitter."


def french_error(message: str) -> str:
    for pattern, replacement in ERRORS:
        if pattern.match(message):
            return pattern.sub(replacement, message)
    return message


def _french_help_option(original: Callable[[list[str]], Callable[[Any], Any]]) -> Any:
    def help_option(param_decls: list[str]) -> Callable[[Any], Any]:
        decorate = original(param_decls)

        def apply(command: Any) -> Any:
            result = decorate(command)
            command.params[-1].help = HELP_TEXT  # the option the decorator just appended
            return result

        return apply

    return help_option


def _french_usage(original: Callable[..., None]) -> Callable[..., None]:
    def write_usage(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        original(self, prog, args, "Utilisation : " if prefix is None else prefix)

    return write_usage


def _french_errors(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def rich_format_error(error: Any) -> None:
        message = french_error(error.format_message())
        error.format_message = lambda: message
        original(error)

    return rich_format_error


typer.core._ = french  # type: ignore[attr-defined]
click_decorators.help_option = _french_help_option(click_decorators.help_option)
click_formatting.HelpFormatter.write_usage = _french_usage(  # type: ignore[method-assign]
    click_formatting.HelpFormatter.write_usage
)
RICH_UTILS = "typer.rich_utils"


def _frenchify(rich: Any) -> None:
    rich.DEPRECATED_STRING = "(obsolète) "
    rich.DEFAULT_STRING = "[défaut : {}]"
    rich.ENVVAR_STRING = "[variable : {}]"
    rich.REQUIRED_LONG_STRING = "[obligatoire]"
    rich.ARGUMENTS_PANEL_TITLE = "Arguments"
    rich.OPTIONS_PANEL_TITLE = "Options"
    rich.COMMANDS_PANEL_TITLE = "Commandes"
    rich.ERRORS_PANEL_TITLE = "Erreur"
    rich.ABORTED_TEXT = "Interrompu."
    rich.RICH_HELP = "Aide : [blue]'{command_path} {help_option}'[/]."
    rich.rich_format_error = _french_errors(rich.rich_format_error)


class _ThenFrench(importlib.abc.Loader):
    """Runs typer.rich_utils, then gives it the French texts above."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _frenchify(module)


class _FrenchOnImport(importlib.abc.MetaPathFinder):
    """Typer imports typer.rich_utils only to print help or an error; importing it here would cost
    every command, ``lgo serve``'s start included, rich.markdown and markdown_it (~40 ms). So its
    French texts are set when Typer first imports it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != RICH_UTILS:
            return None
        sys.meta_path.remove(self)  # once, and no recursion through find_spec below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenFrench(spec.loader)
        return spec


if RICH_UTILS in sys.modules:
    _frenchify(sys.modules[RICH_UTILS])
else:
    sys.meta_path.insert(0, _FrenchOnImport())
