"""Ask for a code review as structured output: the reply is a dataclass.

git diff | python examples/structured_review.py    # exit 1: changes asked
"""

import sys
from dataclasses import dataclass
from typing import Literal

import codex_lite as cl


@dataclass
class Review:
    verdict: Literal["approve", "request_changes"]
    issues: list[str]


diff = sys.stdin.read()
with cl.Conversation.start(cl.load_config(), ephemeral=True) as conversation:
    result = conversation.run_turn(f"Review this diff:\n{diff}", output_schema=Review)
review: Review = result.parsed
print(review.verdict)
for issue in review.issues:
    print(f"- {issue}")
sys.exit(0 if review.verdict == "approve" else 1)
