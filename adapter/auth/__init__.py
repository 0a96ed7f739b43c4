"""Delegated authentication and authorization, as k8s.io/apiserver does them.

Modules: `user` (UserInfo), `request_info` (RequestInfo), `certificates` (which CA issued a
client certificate), `credentials` (the authenticator protocol), `authenticators` (the chain),
`token_review` (bearer tokens and their cache), `authorizers` (the chain and SAR),
`review` (the API calls needed), `middleware` (the aiohttp filters).
"""

__all__: list[str] = []
