"""Step: TCP and UDP share one port number."""
from __future__ import annotations

from typing import Dict

from netlab import independence
from netlab.services.table import facts as service_facts
from netlab.tour._step import Step, TourContext


def run(ctx: TourContext) -> Dict:
    data = independence.demonstrate(0, ctx.host)
    ctx.table([(st["step"], st["socket"], "bound" if st["ok"] else f"{st['error']} ({st['errno']})",
                st["meaning"]) for st in data["steps"]],
              ["#", "socket", "result", "meaning"])
    ctx.say()
    ctx.say(f"Port {data['port']}: one TCP and one UDP socket bound the same number at once; "
            f"a second TCP socket got {data['second_tcp_error']}.")
    echo = service_facts("echo").well_known_port
    ctx.say(f"The kernel keys sockets by (protocol, address, port): TCP {echo} and UDP {echo} "
            "are two different doors.")
    return {"port": data["port"], "tcp_bound": data["tcp_bound"],
            "udp_bound": data["udp_bound"], "second_tcp_error": data["second_tcp_error"]}


STEP = Step("TCP and UDP share one port number",
            "TCP and UDP are separate port spaces: both bind the same number, "
            "a second TCP socket on it is refused",
            "lessons/binding", "lab02-binding", run)
