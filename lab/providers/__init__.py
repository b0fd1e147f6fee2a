"""The provider's side of a VPN service: the customer setup form, the provider's rules on
it, and the lab and customer bundle made from it."""
