#!/usr/bin/env python3
"""A window for bench/rdp.sh's round trips: it fills the target's screen and
changes colour at each key it receives, so every key the person types
brings one screen update back. Run with DISPLAY set to the target's."""

import tkinter

root = tkinter.Tk()
root.overrideredirect(True)
root.geometry(f"{root.winfo_screenwidth()}x{root.winfo_screenheight()}+0+0")
colours = ["#204080", "#804020"]
state = {"n": 0}
root.configure(background=colours[0])


def key(_event):
    state["n"] += 1
    root.configure(background=colours[state["n"] % 2])


root.bind("<KeyPress>", key)
root.after(200, root.focus_force)
root.mainloop()
