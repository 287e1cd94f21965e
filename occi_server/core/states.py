"""State machines: which action is legal in which state, and where it leads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str | None  # None: the action leaves the state as it is


@dataclass(frozen=True)
class StateMachine:
    """The state attribute of a kind and its action-driven transitions."""

    attribute: str
    initial: str
    transitions: Mapping[str, Transition]

    def allowed(self, action_term: str, state: str | None) -> bool:
        transition = self.transitions.get(action_term)
        return transition is None or state in transition.sources

    def target(self, action_term: str) -> str | None:
        transition = self.transitions.get(action_term)
        return transition.target if transition else None

    def legal_actions(self, state: str | None) -> list[str]:
        return [term for term, t in self.transitions.items() if state in t.sources]


def machine(
    attribute: str, initial: str, **transitions: tuple[set[str], str | None]
) -> StateMachine:
    return StateMachine(
        attribute=attribute,
        initial=initial,
        transitions={
            term: Transition(frozenset(sources), target)
            for term, (sources, target) in transitions.items()
        },
    )
