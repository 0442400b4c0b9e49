"""Emulators of Microsoft Graph, the Microsoft identity platform and Jira, for tests and the demo.

Each emulator is a small Flask app that speaks the real service's wire format, served over
real HTTP(S) on 127.0.0.1 by :class:`~ticket_manager_sandbox.server.EmulatorServer`.
:class:`~ticket_manager_sandbox.sandbox.Sandbox` starts all three with one test CA and tells
the product how to reach them.
"""
