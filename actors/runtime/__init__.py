"""The actor kernel: mailboxes, refs, supervision, dead letters and phased shutdown."""

from actors.runtime.actor import Actor as Actor
from actors.runtime.actor import handles as handles
from actors.runtime.envelope import Envelope as Envelope
from actors.runtime.kernel import ActorFailure as ActorFailure
from actors.runtime.kernel import ActorSystem as ActorSystem
from actors.runtime.kernel import DeadLetter as DeadLetter
from actors.runtime.kernel import KernelSettings as KernelSettings
from actors.runtime.kernel import open_actor_system as open_actor_system
from actors.runtime.ref import ActorRef as ActorRef

__all__ = [
    "Actor",
    "ActorFailure",
    "ActorRef",
    "ActorSystem",
    "DeadLetter",
    "Envelope",
    "KernelSettings",
    "handles",
    "open_actor_system",
]
