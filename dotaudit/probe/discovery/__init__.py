"""The network as found: which resolvers the system was given, which encrypted resolvers
they designate (DDR, RFC 9462) or the network names (DNR, RFC 9463), and what the
network does to encrypted DNS (the survey).

==================  ===========================================================
``resolv_conf``     resolv.conf and systemd-resolved's upstreams, with sources
``svcb``            SVCB records read one by one (a malformed one is reported)
``ddr``             ``_dns.resolver.arpa``, designations, verified/opportunistic
``dnr``             DHCP and RA encrypted-DNS options from lease state
``identity``        NSID and CHAOS identity of a resolver over one path
``survey``          DoT, DoH, DoQ and port 53 per resolver, with small budgets
``network_verdict`` the plain-words verdict, one clause per finding with evidence
``run``             all of it in order, as report sections
==================  ===========================================================

Like the checks, nothing here opens a socket: every packet goes through the
:class:`~dotaudit.probe.transport.Transport`.
"""
