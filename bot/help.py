"""The help text, in the words of the place it is shown: console words, or the platform's own slash commands."""

from __future__ import annotations

from bot.reply import Request, Via

INTRO = "I answer questions with verbatim quotes from the transcripts I know."
OUTRO = "Every quote is word for word from a transcript, with a link to the moment."

CONSOLE = """  <question>       the three passages that best answer it (or: ask <question>)
  more             the next three results of the last answer
  context N        the text around quote N of the last answer
  quote [topic]    one quote, at random or about a topic
  sources          the transcripts I search, with links
  daily now        today's quote (daily posts are for {channels} channels)
  help             this text
  quit             leave (or Ctrl-D)"""

WORDS = """  ask <question>   the three passages that best answer it (or just ask the question)
  quote [topic]    one quote, at random or about a topic
  sources          the transcripts I search, with links
{daily}  help             this text"""
WORDS_DAILY = "  daily ...        a quote posted to this channel every day (daily help)\n"

# core command -> (its arguments, what it does), in the order help lists them
SLASH = (
    ("ask", " <question>", "the three passages that best answer it"),
    ("quote", " [topic]", "one quote, at random or about a topic"),
    ("sources", "", "the transcripts I search, with links"),
    ("daily", " subscribe [HH:MM] [Area/City] [topic] | off | status | now", "a quote posted to this channel "
                                                                          "every day"),
    ("help", "", "this text"),
)


def help_text(request: Request, *, daily: bool, channels: str = "chat") -> str:
    """What ``help`` answers to ``request``: only commands that work where it was asked.

    The console lists its words (``more``, ``context N``, ``daily now``); a platform that names its
    commands in ``Request.command_names`` gets those names (``/quote-sources`` on Slack), and a
    mention or DM there is a question too; otherwise the plain command words.
    """
    if request.via is Via.CONSOLE:
        return "\n".join((INTRO, CONSOLE.format(channels=channels), OUTRO))
    names = dict(request.command_names)
    if not names:
        return "\n".join((INTRO, WORDS.format(daily=WORDS_DAILY if daily else ""), OUTRO))
    rows = [(names[c] + args, what) for c, args, what in SLASH if c in names and (daily or c != "daily")]
    width = max(len(r[0]) for r in rows) + 2 if rows else 0
    lines = [f"  {cmd.ljust(width)}{what}" if len(cmd) < 40 else f"  {cmd}\n      {what}" for cmd, what in rows]
    lines.append("  Mention me with a question, or send it in a direct message, for an answer everyone sees.")
    return "\n".join((INTRO, *lines, OUTRO))
