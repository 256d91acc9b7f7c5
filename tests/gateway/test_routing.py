import pytest

from gateway.errors import ValidationError
from gateway.outbound.routing import Router, RouteRule


def test_longest_prefix_wins():
    router = Router(
        [
            RouteRule("us", ("+1",)),
            RouteRule("ca_rogers", ("+1416", "+1647")),
            RouteRule("kr", ("+82",)),
        ]
    )
    assert router.route_for("+14165550000") == "ca_rogers"
    assert router.route_for("+12025550101") == "us"
    assert router.route_for("+821012345678") == "kr"


def test_explicit_route_and_default():
    router = Router([RouteRule("a", ("+1",)), RouteRule("b", (), default=True)])
    assert router.route_for("+447700900123") == "b"
    assert router.route_for("+12025550101", "b") == "b"
    with pytest.raises(ValidationError):
        router.route_for("+12025550101", "nope")


def test_no_route():
    router = Router([RouteRule("a", ("+1",)), RouteRule("b", ("+44",))])
    with pytest.raises(ValidationError):
        router.route_for("+33612345678")


def test_single_route_takes_everything():
    assert Router([RouteRule("only", ())]).route_for("+33612345678") == "only"
