"""Everything that speaks Microsoft Graph and the Microsoft identity platform.

Raw Graph JSON stays inside this package: callers get :class:`~.messages.MailMessage` and the
named exceptions of :mod:`.errors`.
"""
