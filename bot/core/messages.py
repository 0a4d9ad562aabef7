"""The neutral outbound model. Every reply, post and DM is a `Message`; each adapter renders it natively.

Text fields hold Markdown as members write it (bold, inline code, fenced code). Adapters escape
member-controlled text for their platform; the core never emits platform markup.

Buttons: `action` is a command name and `value` its argument text, so an adapter runs a click as
`dispatch_line(f"/{action} {value}")`. A message whose buttons all re-run the same command (the
leaderboard's pages) is meant to be updated in place. Adapters handle two actions natively:
`form` (open the `Form` that `forms.form_for(value)` describes, as a modal) and `discuss`
(open a thread or reply chain on the post).

Forms (`Form`) are the neutral modal: a title, the command they submit to, fixed arguments and the
fields the member fills in. Each platform clamps `max_length` to its own input limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = frozenset({"info", "question", "error", "success", "announcement", "reveal", "leaderboard"})


@dataclass(frozen=True)
class Field:
    """A labelled value (Discord embed field, Slack section field, console `name: value`)."""

    name: str
    value: str
    inline: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "inline": self.inline}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Field:
        return cls(name=str(d["name"]), value=str(d["value"]), inline=bool(d.get("inline", False)))


@dataclass(frozen=True)
class Button:
    """An action a reader can take; `action` + `value` come back to `commands.dispatch` as a command line."""

    label: str
    action: str
    value: str = ""
    style: str = "secondary"

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "action": self.action, "value": self.value, "style": self.style}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Button:
        return cls(
            label=str(d["label"]),
            action=str(d["action"]),
            value=str(d.get("value", "")),
            style=str(d.get("style", "secondary")),
        )


@dataclass(frozen=True)
class FormField:
    """One input of a form; `style` is `short` (one line) or `paragraph`."""

    name: str
    label: str
    style: str = "short"
    required: bool = True
    max_length: int | None = None
    placeholder: str = ""


@dataclass(frozen=True)
class Form:
    """A modal: on submit the adapter dispatches `command` with `fixed` plus the filled-in fields."""

    title: str
    command: str
    fields: tuple[FormField, ...]
    fixed: Mapping[str, str]
    note: str = ""


@dataclass(frozen=True)
class Message:
    """What the bot says. `ephemeral` replies are shown only to the caller where the platform allows."""

    title: str = ""
    body: str = ""
    fields: tuple[Field, ...] = ()
    code: str | None = None
    code_language: str = "python"
    buttons: tuple[Button, ...] = ()
    image: str | None = None
    footer: str = ""
    kind: str = "info"
    ephemeral: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown message kind {self.kind!r}")

    @property
    def is_error(self) -> bool:
        return self.kind == "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "body": self.body,
            "fields": [f.to_dict() for f in self.fields],
            "code": self.code,
            "code_language": self.code_language,
            "buttons": [b.to_dict() for b in self.buttons],
            "image": self.image,
            "footer": self.footer,
            "ephemeral": self.ephemeral,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Message:
        return cls(
            title=str(d.get("title", "")),
            body=str(d.get("body", "")),
            fields=tuple(Field.from_dict(f) for f in d.get("fields", ())),
            code=d.get("code"),
            code_language=str(d.get("code_language", "python")),
            buttons=tuple(Button.from_dict(b) for b in d.get("buttons", ())),
            image=d.get("image"),
            footer=str(d.get("footer", "")),
            kind=str(d.get("kind", "info")),
            ephemeral=bool(d.get("ephemeral", False)),
        )

    def plain_text(self) -> str:
        """A readable plain-text rendering (console, notifications, logs)."""
        parts: list[str] = []
        if self.title:
            parts.append(self.title)
        if self.body:
            parts.append(self.body)
        for f in self.fields:
            parts.append(f"{f.name}: {f.value}")
        if self.code:
            parts.append(f"```{self.code_language}\n{self.code.rstrip()}\n```")
        if self.buttons:
            parts.append("  ".join(f"[{b.label}]" for b in self.buttons))
        if self.footer:
            parts.append(self.footer)
        return "\n".join(parts)


def error(text: str, *, usage: str | None = None) -> Message:
    """A private error reply: one specific line, plus the usage when the caller got the syntax wrong."""
    return Message(body=text, footer=f"Usage: {usage}" if usage else "", kind="error", ephemeral=True)

