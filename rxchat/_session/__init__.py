"""`ChatSession`: a conversation as an Rx actor, and `ChatState`, the value it folds.

`state`, `events` and `reducer` are the pure conversation; `commands`, `turns` and
`actor` the turn protocol; `session` the public face; `context` and `persist` what a
turn sends and how a session is saved.
"""
