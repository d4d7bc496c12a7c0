"""Let the model answer a question about a local file by calling two Python
functions; codex-lite runs the calls and sends their results back.

    export OPENAI_API_KEY=sk-...
    python examples/file_tools.py notes.txt "Which lines mention TODO?"
"""

import sys
from pathlib import Path
from typing import Annotated

import codex_lite as cl

path = Path(sys.argv[1])


def read_lines(start: Annotated[int, "the first line, from 1"], count: int = 50) -> str:
    """Lines of the file, each with its number."""
    lines = path.read_text(encoding="utf-8").splitlines()[start - 1 : start - 1 + count]
    return "\n".join(f"{start + n}: {line}" for n, line in enumerate(lines))


def search(word: str) -> list[int]:
    """The numbers of the lines that contain `word`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [n for n, line in enumerate(lines, start=1) if word in line]


question = f"{sys.argv[2]} (the file is {path.name})"
with cl.Conversation.start(cl.load_config(), ephemeral=True) as conversation:
    print(conversation.run_turn(question, tools=[read_lines, search]).text)
