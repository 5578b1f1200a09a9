"""The sandbox: a loopback emulator of the platforms' APIs with simulated brands, on a virtual
clock, for the demo, the tests and dry runs (DESIGN.md, "The sandbox").

::

    server.py      SandboxServer: stdlib HTTP on 127.0.0.1, a daemon thread; Date on the
                   virtual clock
    app.py         routing, auth, rate-limit headers, injected faults, request counts
    x_api.py       X API v2: users, POST /2/tweets, mentions and user timelines, lookups
    search.py      X API v2: GET /2/tweets/search/recent (conversation_id:, from:, to:, is:reply)
    x_dms.py       X API v2: GET /2/dm_events, the researcher's direct messages (30 days)
    params.py      X query parameters, checked as X checks them (declared per route, never
                   twice), turned into id ranges
    mastodon_api.py  Mastodon REST: instance, statuses (Idempotency-Key), notifications (Link
                   paging)
    bluesky_api.py   Bluesky XRPC: sessions (JWTs), resolveHandle, getProfile, createRecord,
                   listNotifications, getPosts, getPostThread
    bluesky_records.py  Bluesky record keys, URIs, post views, mention-facet checks
    platform.py    the Mastodon/Bluesky request pipeline: their rate-limit headers and errors
    network.py     Mastodon and Bluesky state: accounts (each researcher account its own
                   inbox), posts, notifications, brand threads
    control.py     /_sandbox/: world, clock, runners, ground truth, stats, rate limits,
                   faults, crowd, quirks
    runners.py     the runners sharing a standalone sandbox's clock: it advances only to the
                   earliest instant every announced runner asked for (a timeout for the dead)
    routing.py     route templates ("GET /2/users/:id/mentions"), handler context, stats
    client.py      SandboxControl: the control plane from Python over HTTP (httpx)
    world.py       accounts, posts, direct messages, id-sorted indexes, the virtual clock
    brands.py      each post's fate: whether, when and how a brand replies
    spec.py        WorldSpec: the body of PUT /_sandbox/world, built from a study
    timeline.py    newest-first pages over id ranges, pagination tokens
    inspection.py  ground truth (GET /_sandbox/posts)
    limits.py      rate-limit windows on the virtual clock (lowerable per route)
    faults.py      injected faults per route: scripted or seeded-random, 5xx/429, slow, dropped,
                   malformed, duplicate, out-of-order and unusable items, lost answers
    verify.py      a store compared with ground truth, to the millisecond (tests, dry runs)
    replay.py      a world rebuilt from what a run recorded (an in-process sandbox resumed)
    web.py         request/response values and X's error bodies

In-process::

    with SandboxServer() as sandbox:
        sandbox.world.configure(WorldSpec.from_study(study, start))
        clock = sandbox.world.clock          # share it with the runner
"""

from mystery.sandbox.client import SandboxControl
from mystery.sandbox.server import SandboxServer
from mystery.sandbox.spec import BrandSpec, WorldSpec
from mystery.sandbox.world import World, WorldConflict

__all__ = ["BrandSpec", "SandboxControl", "SandboxServer", "World", "WorldConflict", "WorldSpec"]
