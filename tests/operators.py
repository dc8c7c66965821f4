"""Staff operators for command-line tests and benchmarks: their password and a fresh TOTP code on stdin.

A code's time step is accepted once (replay protection), so an operator remembers the last step it used
and takes the next: the current one, then the one ahead (the window allows one step either side), and
only then waits for the clock.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pyotp

STEP = 30


@dataclass
class Operator:
    email: str
    password: str
    secret: str
    last_step: int = 0

    def code(self) -> str:
        """A code for a time step not used before (what the person's app would show)."""
        step = max(int(time.time()) // STEP, self.last_step + 1)
        while step > int(time.time()) // STEP + 1:
            time.sleep(0.2)
        self.last_step = step
        return pyotp.TOTP(self.secret).at(step * STEP)

    def proof(self) -> str:
        """Two lines for stdin: the password, then a fresh code."""
        return f"{self.password}\n{self.code()}\n"

    def wrong_code(self) -> str:
        right = {pyotp.TOTP(self.secret).at(time.time() + d * STEP) for d in (-1, 0, 1)}
        wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in right)
        return f"{self.password}\n{wrong}\n"


def operators_from_demo(output: str) -> dict[str, Operator]:
    """The staff logins `portal demo` prints (role line, then password and TOTP secret lines), by email."""
    found: dict[str, Operator] = {}
    pattern = re.compile(r"^\S+: (?P<email>\S+@\S+)\n\s+password: (?P<password>\S+)\n\s+TOTP secret: (?P<secret>\S+)",
                         re.MULTILINE)
    for m in pattern.finditer(output):
        found[m["email"]] = Operator(m["email"], m["password"], m["secret"])
    return found
