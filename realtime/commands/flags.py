"""Option groups for typer commands: declare a set of flags once, use it in several commands.

typer reads a command's options from its signature, so two commands that share 14 flags would
list them twice. A flag group is a frozen dataclass whose fields are typer ``Annotated`` options;
``with_flag_groups`` lists each group's fields as the command's options (in the group
parameter's place) and hands the command one typed group value per group. A group whose options
come from a table instead of its fields says so with two methods: ``flag_parameters()`` (the
options) and ``from_flags(**values)`` (the group from their values).

Example:
    >>> @dataclass(frozen=True)
    ... class Outputs:
    ...     jsonl: Annotated[Path | None, typer.Option("--jsonl")] = None
    >>> @app.command("run")
    ... @with_flag_groups
    ... def run(outputs: Outputs, verbose: VerboseOpt = False) -> int: ...
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar, get_type_hints

R = TypeVar("R")
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def with_flag_groups(command: Callable[..., R]) -> Callable[..., R]:
    """Expand every parameter of ``command`` annotated with a dataclass into its fields.

    The wrapper's signature (what typer reads) has the group's fields, with their ``Annotated``
    types and defaults, where the group parameter was; a call gathers them back into the group.

    Raises:
        TypeError: A field name is used by two groups or by the command itself.
    """
    hints = get_type_hints(command, include_extras=True)
    params: list[inspect.Parameter] = []
    groups: dict[str, tuple[Callable[..., Any], list[str]]] = {}
    for param in inspect.signature(command).parameters.values():
        kind = hints.get(param.name, param.annotation)
        if isinstance(kind, type) and is_dataclass(kind):
            group_params = _group_parameters(kind)
            build = getattr(kind, "from_flags", kind)
            groups[param.name] = (build, [p.name for p in group_params])
            params += group_params
        else:  # all keyword-only: typer passes every value by name, in any order
            params.append(param.replace(kind=_KEYWORD, annotation=kind))
    names = [p.name for p in params]
    if len(set(names)) != len(names):
        raise TypeError(f"{command.__name__}: flag names used twice in {names}")

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> R:
        for group, (build, members) in groups.items():
            kwargs[group] = build(**{name: kwargs.pop(name) for name in members})
        return command(**kwargs)

    # typer reads the signature and, for parameters without Annotated, the annotations.
    returns = hints.get("return", inspect.Signature.empty)
    wrapper.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    return wrapper


def _group_parameters(group: type) -> list[inspect.Parameter]:
    from_table = getattr(group, "flag_parameters", None)
    if from_table is not None:
        params: list[inspect.Parameter] = from_table()
        return params
    hints = get_type_hints(group, include_extras=True)
    return [
        inspect.Parameter(f.name, _KEYWORD, default=f.default, annotation=hints[f.name])
        for f in fields(group)
    ]
