"""``netlab lab list|show N|check N|init N``: the course labs and their autograder."""
from __future__ import annotations

import argparse
import sys

from netlab._cliutil import add_json_flag, print_json, print_table
from netlab.errors import UsageError

__all__ = ["register", "run"]


def _lab_number(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid lab number {text!r}: use a number such as 1 (see 'netlab lab list')") from None


def register(sub) -> None:
    p = sub.add_parser(
        "lab",
        help="the course labs: list, show a handout, check your code, get a starter",
        description="The course labs. 'list' shows every lab and your last score, "
        "'show N' prints a handout, 'init N' copies a lab's starter code into the current "
        "directory, 'check N' grades your code (in a sandboxed child process, on loopback).",
    )
    p.set_defaults(func=_no_action)
    actions = p.add_subparsers(title="actions", metavar="ACTION", dest="lab_action")

    ls = actions.add_parser("list", help="one line per lab: number, title, last score")
    add_json_flag(ls)
    ls.set_defaults(func=run)

    show = actions.add_parser("show", help="print a lab's handout")
    show.add_argument("number", type=_lab_number, metavar="N", help="the lab number")
    show.set_defaults(func=run)

    chk = actions.add_parser(
        "check", help="grade your code for lab N",
        description="Grade your code for lab N: each check has a weight and a hint; "
        "exit status 0 when every check passes, 1 otherwise.")
    chk.add_argument("number", type=_lab_number, metavar="N", help="the lab number")
    chk.add_argument("--path", metavar="DIR",
                     help="the folder with your code (default: the lab's folder, "
                     "./exercises/labNN-topic or ./labNN-topic, or . inside it)")
    add_json_flag(chk)
    chk.set_defaults(func=run)

    init = actions.add_parser("init", help="copy lab N's starter into the current directory")
    init.add_argument("number", type=_lab_number, metavar="N", help="the lab number")
    init.add_argument("--dest", metavar="DIR", help="where to copy it (default: ./labNN-topic)")
    init.add_argument("--solution", action="store_true",
                      help="for teachers: copy the reference solution over the starter files")
    init.set_defaults(func=run)


def _no_action(args: argparse.Namespace) -> int:
    raise UsageError("no lab action given: use 'netlab lab list', 'netlab lab show N', "
                     "'netlab lab init N' or 'netlab lab check N'")


def _list(args: argparse.Namespace) -> int:
    from netlab import labs

    rows = labs.list_labs()
    if args.json:
        print_json(rows)
        return 0
    # Exactly one line per lab (no header), so the list is easy to read and to grep:
    # number, title, folder, and the last score where this folder was checked.
    title_w = max(len(r["title"]) for r in rows)
    slug_w = max(len(r["slug"]) for r in rows)
    for row in rows:
        last = row["last_result"]
        status = ""
        if last:
            status = f"checked: {last['score']}/{last['max_score']}"
            status += " passed" if last["score"] == last["max_score"] else ""
        line = f"{row['number']:>2}  {row['title']:<{title_w}}  {row['slug']:<{slug_w}}  {status}"
        print(line.rstrip())
    return 0


def _check(args: argparse.Namespace) -> int:
    from netlab import labs

    lab = labs.get_lab(args.number)
    labdir = labs.locate_lab_dir(lab, args.path)  # for the header line below
    result = labs.check_lab(lab.number, labdir)   # grade and remember, as for Python callers
    if args.json:
        print_json(result)
    else:
        print(f"lab {lab.number}: {lab.title} ({labdir})")
        rows = [(t["name"], "PASS" if t["passed"] else "FAIL",
                 f"{t['points'] if t['passed'] else 0}/{t['points']}", t["message"])
                for t in result["tests"]]
        print_table(rows, ("check", "result", "points", "message"))
        failed = [t for t in result["tests"] if not t["passed"]]
        if failed:
            print("\nhints:")
            for t in failed:
                print(f"  {t['name']}: {t['hint']}")
        print(f"\nscore: {result['score']}/{result['max_score']}")
        sys.stdout.flush()
    return 0 if result["score"] == result["max_score"] else 1


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: every netlab command builds the whole
    # parser, and netlab.labs loads all ten labs (and the packet core).
    from netlab import labs

    if args.lab_action == "list":
        return _list(args)
    if args.lab_action == "show":
        sys.stdout.write(labs.handout(args.number))
        sys.stdout.flush()
        return 0
    if args.lab_action == "init":
        target = labs.init_lab(args.number, args.dest, args.solution)
        lab = labs.get_lab(args.number)
        what = "reference solution" if args.solution else "starter"
        print(f"copied the {what} of lab {lab.number} ({lab.title}) to {target}")
        print(f"read the handout: {target}/README.md   check your work: "
              f"netlab lab check {lab.number} --path {target}")
        return 0
    return _check(args)
