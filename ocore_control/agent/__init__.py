"""The host agent: a small signed JSON API (werkzeug) that runs the Odoo instances of one server.

Runs without Odoo: ``python -m ocore_control.agent --config /etc/ocore-agent.json``.
"""
