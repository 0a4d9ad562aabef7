"""The AI reviewer's client: any OpenAI-compatible chat-completions server (a hosted provider, or a
local Ollama / vLLM / llama.cpp server) through the official `openai` client, an optional extra
(`pip install 'onsite[ai]'`). It turns the provider's failures into `ReviewUnavailable` with one
line a member may read; nothing of the key ever reaches a message or a log line."""

from __future__ import annotations

from typing import Any

from bot.config import Secret
from bot.core.errors import ConfigError
from bot.core.review import ReviewUnavailable

EXTRA_HINT = "the AI review needs the optional `ai` extra: pip install 'onsite[ai]'"


class OpenAIReviewModel:
    def __init__(self, base_url: str, model: str, api_key: Secret | None) -> None:
        try:
            import openai
        except ImportError:
            raise ConfigError(f"ONSITE_LLM_BASE_URL is set but {EXTRA_HINT}") from None
        self._openai = openai
        self.model = model
        # no retries of its own: one review is one call, and a busy provider gets a note, not a storm
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key.reveal() if api_key else "none",
                                          max_retries=0)

    async def complete(self, system: str, user: str, *, timeout_s: float) -> str:
        openai = self._openai
        try:
            reply: Any = await self._client.chat.completions.create(
                model=self.model, temperature=0, stream=False, timeout=timeout_s,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}])
        except openai.RateLimitError as exc:
            wait = exc.response.headers.get("retry-after") if exc.response is not None else None
            raise ReviewUnavailable("the AI reviewer is rate-limited" + (f" (retry after {wait} s)" if wait else "")) \
                from None
        except openai.APITimeoutError:
            raise ReviewUnavailable("the AI reviewer did not answer in time") from None
        except openai.APIStatusError as exc:
            raise ReviewUnavailable(f"the AI reviewer answered with an error ({exc.status_code})") from None
        except openai.APIConnectionError:
            raise ReviewUnavailable("the AI reviewer could not be reached") from None
        except openai.OpenAIError as exc:  # a response the client could not read
            raise ReviewUnavailable(f"the AI reviewer's reply could not be read ({type(exc).__name__})") from None
        except ValueError:  # a 200 whose body is not JSON: the client's own parser raises, unwrapped
            raise ReviewUnavailable("the AI reviewer's reply was not valid JSON") from None
        try:
            content = reply.choices[0].message.content
        except (AttributeError, IndexError, TypeError):
            raise ReviewUnavailable("the AI reviewer's reply had no message") from None
        if not isinstance(content, str) or not content.strip():
            raise ReviewUnavailable("the AI reviewer's reply was empty")
        return content

    async def close(self) -> None:
        await self._client.close()
