"""The invented parts of restricted national specifications, one module per service.

Each constant here is a placeholder: the real value is in a specification lgo cannot read (Cnam,
SESAM-Vitale, ANS restricted documents). The reviewed truth is ``contracts/<service>/profile.json``
and a test holds lgo's and the simulator's values to it (docs/contracts.md lists every placeholder
and what the real specification would supply).
"""
