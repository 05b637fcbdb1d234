"""``netlab lab list|show|init|check|grade|gradescope``: the course labs and their autograder."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Tuple

from netlab._cliutil import (add_json_flag, print_json, print_table, print_wrapped, status_width,
                             terminal_width)
from netlab._i18n import _
from netlab.errors import UsageError

__all__ = ["register", "run"]


def _lab_number(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("invalid lab number {text!r}: use a number such as 1 (see 'netlab lab list')")
            .format(text=text)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: use a whole number of at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1e6:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"invalid seconds {text!r}: use a number above 0, such as 60")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "lab",
        help="the course labs: list, show a handout, check your code, get a starter, grade a class",
        description="The course labs. 'list' shows every lab and your last score, "
        "'show N' prints a handout, 'init N' copies a lab's starter code into the current "
        "directory, 'check N' grades your code in the sandbox (practice mode without it). "
        "For teachers: 'grade N DIR' grades a class, 'gradescope N' writes an autograder.",
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
    chk.add_argument("--checks", metavar="DIR",
                     help="a teacher's hidden checks (DIR/labNN.toml), counted in the score")
    add_json_flag(chk)
    chk.set_defaults(func=run)

    grd = actions.add_parser(
        "grade", help="for teachers: grade every submission in DIR (one subfolder per student)",
        description="Grade each subfolder of DIR (named by student) in the sandbox, --jobs at a "
        "time: a progress line on a terminal, then a summary table. Needs the sandbox "
        "(bubblewrap and user namespaces); exit 0 when every submission was graded.")
    grd.add_argument("number", type=_lab_number, metavar="N", help="the lab number")
    grd.add_argument("dir", metavar="DIR", help="the folder of submissions, one subfolder each")
    grd.add_argument("--jobs", type=_positive_int, default=1, metavar="J",
                     help="submissions graded at the same time (default 1)")
    grd.add_argument("--csv", metavar="FILE", help="also write submission,score,max_score,status,seconds")
    grd.add_argument("--timeout", type=_positive_float, metavar="S",
                     help="seconds one submission may take in all (default: the lab's budget + 35)")
    grd.add_argument("--checks", metavar="DIR", help="hidden checks (DIR/labNN.toml), counted in the score")
    add_json_flag(grd)
    grd.set_defaults(func=run)

    gs = actions.add_parser(
        "gradescope", help="for teachers: write a Gradescope autograder bundle for lab N",
        description="Write a Gradescope autograder zip (setup.sh, run_autograder) for lab N: "
        "run_autograder grades $AUTOGRADER_DIR/submission/ (default /autograder) in the sandbox "
        "and writes $AUTOGRADER_DIR/results/results.json.")
    gs.add_argument("number", type=_lab_number, metavar="N", help="the lab number")
    gs.add_argument("-o", "--output", required=True, metavar="FILE.zip", help="where to write the zip")
    gs.add_argument("--checks", metavar="DIR", help="hidden checks to bundle (DIR/labNN.toml)")
    gs.set_defaults(func=run)

    init = actions.add_parser("init", help="copy lab N's starter into the current directory")
    init.add_argument("number", type=_lab_number, metavar="N", help="the lab number")
    init.add_argument("--dest", metavar="DIR", help="where to copy it (default: ./labNN-topic)")
    init.add_argument("--solution", action="store_true",
                      help="for teachers: copy the reference solution over the starter files")
    init.set_defaults(func=run)


def _no_action(args: argparse.Namespace) -> int:
    raise UsageError("no lab action given: use 'netlab lab list', 'netlab lab show N', "
                     "'netlab lab init N', 'netlab lab check N' or (teachers) 'netlab lab grade N DIR'")


def _list(args: argparse.Namespace) -> int:
    from netlab import labs

    rows = labs.list_labs()
    if args.json:
        print_json(rows)
        return 0
    # Exactly one line per lab (no header), so the list is easy to read and to grep:
    # number, title, folder name, and the last score checked from here. A score
    # of another folder than the one 'lab check N' grades here says which.
    # On a narrow terminal the folder name column goes, and "in FOLDER" moves
    # to a line of its own.
    width = terminal_width()
    title_w = max(len(r["title"]) for r in rows)
    slug_w = max(len(r["slug"]) for r in rows)
    lines = [(f"{r['number']:>2}  {r['title']:<{title_w}}", r["slug"], *_status(r)) for r in rows]
    if width and any(len(f"{h}  {s:<{slug_w}}  {st} {where}".rstrip()) > width
                     for h, s, st, where in lines):
        for head, _, status, where in lines:
            print(f"{head}  {status}".rstrip())
            if where:
                where = where if len(where) <= width - 6 else "..." + where[9 - width:]
                print(f"      {where}")
        return 0
    for head, slug, status, where in lines:
        print(f"{head}  {slug:<{slug_w}}  {status} {where}".rstrip())
    return 0


def _status(row: dict) -> Tuple[str, str]:
    """('checked: 12/16' or 'checked: 16/16 passed', 'in FOLDER' when the
    score is of another folder than the one 'lab check N' grades here, else '')."""
    last = row["last_result"]
    if not last:
        return "", ""
    status = _("checked: {score}/{max_score}").format(**last)
    status += _(" passed") if last["score"] == last["max_score"] else ""
    path = last.get("path")
    where = path and path != row["folder"]
    return status, (_("in {path}").format(path=os.path.relpath(path)) if where else "")


def _print_result(lab, labdir: str, result: dict) -> None:
    print_wrapped(_("lab {number}: {title} ({path})").format(
        number=lab.number, title=lab.title, path=labdir), hang=2)
    rows = [(t["name"], _("PASS") if t["passed"] else _("FAIL"),
             f"{t['points'] if t['passed'] else 0}/{t['points']}", t["message"])
            for t in result["tests"]]
    print_table(rows, (_("check"), _("result"), _("points"), _("message")))
    failed = [t for t in result["tests"] if not t["passed"] and t["hint"]]
    if failed:
        print("\n" + _("hints:"))
        for t in failed:
            print_wrapped(f"  {t['name']}: {t['hint']}", hang=4)
    if result["status"] != "graded":
        print()
        print_wrapped(f"{result['status']}: {result.get('message', '')}", hang=2)
    print("\n" + _("score: {score}/{max_score}").format(**result))
    sys.stdout.flush()


def _check(args: argparse.Namespace) -> int:
    from netlab import labs
    from netlab.labs import sandbox

    lab = labs.get_lab(args.number)
    labdir = labs.locate_lab_dir(lab, args.path)  # for the header line below
    isolated, why = sandbox.isolation_status()
    if not isolated:
        print_wrapped(_("netlab: note: practice mode, not isolated ({why}); grades need the "
                        "sandbox").format(why=why), file=sys.stderr, hang=2)
    result = labs.check_lab(lab.number, labdir, checks_dir=args.checks, isolated=isolated)
    if args.json:
        print_json(result)
    else:
        _print_result(lab, labdir, result)
    return 0 if result["score"] == result["max_score"] else 1


def _grade(args: argparse.Namespace) -> int:
    from netlab import labs
    from netlab.errors import NetlabError
    from netlab.labs import batch, sandbox

    lab = labs.get_lab(args.number)
    if not os.path.isdir(args.dir):
        raise NetlabError(f"submissions folder {args.dir} does not exist: pass a folder "
                          f"with one subfolder per student")
    sandbox.require_isolation("netlab lab grade")
    paths = batch.submissions(args.dir)
    if not paths:
        raise NetlabError(f"{args.dir} has no subfolders: put each submission in its own folder "
                          f"named by student")
    extra = labs.load_hidden_checks(lab.number, args.checks) if args.checks else []
    tty = sys.stderr.isatty() and not args.json
    room = status_width()

    def progress(done: int, total: int, result: dict) -> None:
        if tty:
            line = (f"graded {done}/{total}: {result['submission']} {result['score']}/"
                    f"{result['max_score']} {result['status']}")
            sys.stderr.write("\r" + line[:room].ljust(room))
            sys.stderr.flush()
    hidden = [args.dir] + ([args.checks] if args.checks else [])
    results = batch.grade_many(lab, paths, jobs=args.jobs, timeout=args.timeout, extra=extra,
                               hidden=hidden, progress=progress)
    if tty:
        sys.stderr.write("\r" + " " * room + "\r")
    if args.csv:
        try:
            batch.write_csv(results, args.csv)
        except OSError as exc:
            raise NetlabError(f"cannot write {args.csv}: {exc.strerror}") from None
    if args.json:
        print_json(results)
    else:
        print_table([(r["submission"], f"{r['score']}/{r['max_score']}", r["status"], f"{r['seconds']:.1f}")
                     for r in results], ("submission", "score", "status", "seconds"))
        graded = [r for r in results if r["status"] == "graded"]
        full = sum(1 for r in results if r["score"] == r["max_score"])
        print()
        print_wrapped(f"lab {lab.number}: {len(results)} submissions, {len(graded)} graded, "
                      f"{full} with full marks, {len(results) - len(graded)} timeout or error")
        sys.stdout.flush()
    return 0 if all(r["status"] == "graded" for r in results) else 1


def _gradescope(args: argparse.Namespace) -> int:
    from netlab import labs
    from netlab.labs import gradescope

    path = gradescope.build_bundle(args.number, args.output, args.checks)
    lab = labs.get_lab(args.number)
    print_wrapped(f"wrote the Gradescope autograder for lab {lab.number} ({lab.title}) "
                  f"to {path}", hang=2)
    print_wrapped("upload it as the assignment's autograder (zip with setup.sh and run_autograder)")
    return 0


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
    if args.lab_action == "grade":
        return _grade(args)
    if args.lab_action == "gradescope":
        return _gradescope(args)
    if args.lab_action == "init":
        target = labs.init_lab(args.number, args.dest, args.solution)
        lab = labs.get_lab(args.number)
        what = "reference solution" if args.solution else "starter"
        print_wrapped(f"copied the {what} of lab {lab.number} ({lab.title}) to {target}",
                      hang=2)
        print_wrapped(f"read the handout: {target}/README.md   check your work: "
                      f"netlab lab check {lab.number} --path {target}", hang=2)
        return 0
    return _check(args)
