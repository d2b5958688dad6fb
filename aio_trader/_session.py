"""One login's credentials, renewed once for everyone who saw them refused: :class:`Session`.

A broker's session class (``KiteSession``, ``DhanSession``) subclasses :class:`Session` and
brings only its login (:meth:`Session._login`: a TOTP login, a user's callback, Dhan's
``RenewToken``...). Everything else is here, once, for every broker:

- **one credential, numbered**: the access token (or enctoken) in use and its
  ``generation``, a number that goes up by one with every credential stored. A REST
  client and a feed that share the session read it before every request and every
  (re)connect, so after a renewal the next request and the next reconnect use the new one;
- **single flight**: a caller that saw the credential of generation ``g`` refused calls
  ``renew(g)``. The first such caller logs in again; callers that come while it runs
  wait for it, and then, the generation having moved on, do not log in again: they retry
  with the new credential. N requests refused at once make one login;
- **a failed renewal is shared** with the callers that waited for it (they raise the same
  error, no second login for them); a later caller tries again, unless the broker
  *refused* the login (a wrong password, PIN or TOTP: a ``BrokerError`` that is not
  retryable): that refusal stands for the credential it was meant to replace, and every
  later refusal of that credential raises it again at once, without a login, until
  :meth:`Session.renew` is called without a generation or :meth:`Session.set_credential`
  hands a token (repeated wrong passwords can lock an account);
- **cancellation**: a renewal cancelled part-way stores nothing: the old credential (and
  its generation) stay, and a caller that was waiting for it tries the login itself;
- **secrets** (tokens, passwords, TOTP secrets, PINs) never appear in a repr, a log or an
  error message.

The REST pipeline (:mod:`aio_trader._rest`) retries a request refused with
``SessionExpired`` once after a successful renewal; the feed engine
(:mod:`aio_trader.feed._engine`) reconnects after one instead of ending.

This module imports no broker package.
"""

from __future__ import annotations

import logging

import anyio

from aio_trader.errors import BrokerError

__all__ = ["Session"]

log = logging.getLogger(__name__)


def _check_credential(credential: object) -> None:
    if not isinstance(credential, str):
        raise TypeError(f"the credential must be a str, got {type(credential).__name__}")
    if not credential:
        raise ValueError("the credential must be a non-empty str")


class Session:
    """The credential of one login, shared by a REST client and a feed, and its renewal.

    ``credential``: the token to start with (``None``: none yet; the first use logs in, if
    the session can). Subclasses implement :meth:`_login` and say whether they can renew
    (:attr:`can_renew`). Nothing is opened here and nothing is kept open: a renewal makes
    its own short-lived connection.
    """

    def __init__(self, credential: str | None = None) -> None:
        if credential is not None:
            _check_credential(credential)
        self._credential = credential
        self._generation = 0
        self._renewals = 0
        #: Logins ended, however (to tell a waiter whether one ran while it waited).
        self._attempts = 0
        #: The error of the last login, if it failed (shared with its waiters).
        self._failure: Exception | None = None
        #: The broker's refusal of a login, with the generation it was meant to replace.
        self._refused: tuple[int, Exception] | None = None
        self._lock = anyio.Lock()

    # -- what a broker supplies ------------------------------------------------------------

    @property
    def can_renew(self) -> bool:
        """Whether this session can log in again by itself."""
        return True

    async def _login(self) -> str:
        """Log in again and return the new credential (nothing stored yet). Raises the
        broker's refusal, or ``ValueError`` when there is nothing to log in with."""
        raise NotImplementedError

    def _who(self) -> str:
        """The account, for the repr and logs (never a secret)."""
        return ""

    # -- the credential ----------------------------------------------------------------------

    def __repr__(self) -> str:
        state = "logged in" if self._credential is not None else "not logged in"
        return (
            f"<{type(self).__name__} {self._who()} {state}, generation {self._generation}, "
            f"{self._renewals} renewal(s)>"
        )

    @property
    def generation(self) -> int:
        """The number of the credential in use: 0 for the one given to the constructor (or
        none), one more per credential stored since (a login, or :meth:`set_credential`)."""
        return self._generation

    @property
    def renewals(self) -> int:
        """How many credentials this session obtained by itself: its logins (the first
        one included), and a token read from a cache or store at the first use."""
        return self._renewals

    @property
    def has_credential(self) -> bool:
        """Whether a credential is held (none yet: the first use logs in)."""
        return self._credential is not None

    def current(self) -> str | None:
        """The credential in use, or ``None`` before the first login (a secret: never log
        it). Read :attr:`generation` *before* it, and pass that to :meth:`renew` when
        the credential is refused."""
        return self._credential

    async def credential(self) -> str:
        """The credential in use; logs in first when there is none yet (single flight, as
        :meth:`renew`). A feed calls it before every (re)connect.

        Raises what the login raises (``ValueError`` when the session has none to make).
        Cancellation: propagates; nothing is stored from a login cut short.
        """
        while self._credential is None:
            await self.renew(self._generation)
        return self._credential

    def set_credential(self, credential: str) -> None:
        """Use ``credential`` from now on (a token obtained elsewhere): the generation goes
        up, so every user of the session takes it on its next request or reconnect."""
        _check_credential(credential)
        self._keep_credential(credential)

    def _keep_credential(self, credential: str) -> None:
        self._credential = credential
        self._generation += 1
        self._refused = None

    async def renew(self, generation: int | None = None) -> None:
        """Log in again, once for all callers that saw generation ``generation`` refused.

        ``generation``: the :attr:`generation` read before the refused request or connect
        (default: the current one, i.e. renew now). If the credential has moved on since,
        nothing is done: the caller retries with the new one. Otherwise the first caller
        logs in (:meth:`_login`) and stores the new credential; callers arriving meanwhile
        wait for it and then return without logging in again. On return a new credential
        is in place (made by this call or by the one it waited for).

        Raises the login's error (``ValueError`` when the session cannot renew); the
        callers that waited for a failed login raise the same error without trying again,
        and so does every later call for the same ``generation`` when the broker refused
        the login (a wrong password, PIN or TOTP), until ``renew()`` is called without a
        generation (which always tries).
        Cancellation: propagates; a login cut short stores nothing (the old credential and
        its generation stay) and a caller that was waiting for it tries the login itself.
        """
        forced = generation is None
        if generation is None:
            generation = self._generation
        attempts_seen = self._attempts
        async with self._lock:
            if self._generation != generation:
                return
            if self._attempts != attempts_seen and self._failure is not None:
                raise self._failure  # the login this caller waited for failed: no second try
            if not forced and self._refused is not None and self._refused[0] == generation:
                raise self._refused[1]  # the broker refused this login: not again by itself
            if not self.can_renew:
                raise ValueError(f"{type(self).__name__} has no way to log in again")
            self._failure = None
            if forced:
                self._refused = None  # an explicit renew() replaces the refusal on record
            log.info("%s: logging in again (generation %d)", type(self).__name__, generation)
            try:
                credential = await self._login()
            except Exception as error:
                self._failure = error
                if isinstance(error, BrokerError) and not error.retryable:
                    self._refused = (generation, error)
                log.warning("%s: login failed (%s)", type(self).__name__, type(error).__name__)
                raise
            finally:  # ended: a waiter that saw it begin shares a failure (not a cancellation)
                self._attempts += 1
            if not isinstance(credential, str) or not credential:
                wrong = TypeError("the login returned no credential (expected a non-empty str)")
                self._failure = wrong
                raise wrong
            self._renewals += 1
            self._keep_credential(credential)
            log.info("%s: new credential, generation %d", type(self).__name__, self._generation)
