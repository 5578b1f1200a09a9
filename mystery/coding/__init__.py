"""Which reply acknowledges a probe and which resolves it: rules, coders, review.

Modules: coders, review, rules.
"""
