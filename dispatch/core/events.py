"""The in-process event bus: blinker signals that let upstream packages react without importing
downstream ones (DESIGN §2). Define a signal where its sender lives: `bus.signal("alert.raised")`.
"""

from blinker import Namespace

bus = Namespace()
