"""Example: an HDA's "Submit to Envy" and "Submit variation" buttons.

Put these functions in the HDA's PythonModule (Type Properties > Scripts >
PythonModule) and set the buttons' callback scripts (Python) to::

    hou.phm().submit_to_envy(kwargs)
    hou.phm().submit_variation(kwargs)

The HDA wraps a File Cache SOP named ``filecache1`` and has these spare
parameters (the names are this example's choice):

    envy_wedges   integer   how many wedges (1 = a single cache)
    envy_root     string    where versions go, e.g. $HIP/cache/smoke
    envy_share    string    the Envy folder; empty = ENVY_SHARE or the user's Envy config
    envy_comment  string    a note for whoever reads the cache later

Envy must be importable in Houdini's Python (pip install it into Houdini's
Python, or add it to PYTHONPATH in houdini.env). Nothing here runs on the
farm: the farm runs envy/houdini/runner.py, which sets each parameter with
parm.set(value) and presses the File Cache's "execute" (Save to Disk) button.
"""

import hou

from envy.houdini import api


def _build_job(node):
    """The cache job for this HDA instance: seed per wedge, a new version folder per submit."""
    wedges = node.evalParm("envy_wedges")
    root = node.parm("envy_root").unexpandedString().rstrip("/")  # keep $HIP for Envy to expand
    parms = {
        "seed": "$NVJ" if wedges > 1 else node.evalParm("seed"),
        # $NVV: the next free v001, v002, ... under root; $NVJ: the wedge number; $F4: Houdini's frame.
        "file": root + "/$NVV/wedge$NVJ/" + node.name() + ".$F4.bgeo.sc",
    }
    return api.job_for_node(
        node.node("filecache1"), parms,
        output_parm="file", name=node.name(), wedges=wedges, comment=node.evalParm("envy_comment"),
    )


def _save_first():
    """The farm opens the HIP file on disk: unsaved changes would not be cached."""
    if not hou.hipFile.hasUnsavedChanges():
        return True
    choice = hou.ui.displayMessage(
        "The farm opens the saved HIP file. Save it now?", buttons=("Save and submit", "Cancel"),
        default_choice=0, close_choice=1,
    )
    if choice != 0:
        return False
    hou.hipFile.save()
    return True


def _submit(node, job):
    share = node.evalParm("envy_share") or None
    try:
        record = api.submit(job, share=share)
    except api.CacheJobError as exc:  # one line: show it as it is
        hou.ui.displayMessage(str(exc), severity=hou.severityType.Error, title="Envy")
        return None
    where = " into " + record.output if record.output else ""
    hou.ui.displayMessage(
        "Submitted %s: %d cache job(s)%s." % (record.id, record.settings["wedges"], where), title="Envy"
    )
    return record


def submit_to_envy(kwargs):
    node = kwargs["node"]
    if not _save_first():
        return
    _submit(node, _build_job(node))


def submit_variation(kwargs):
    """The same job with more substeps and its own name: a duplicate with changes."""
    node = kwargs["node"]
    if not _save_first():
        return
    job = _build_job(node)
    # A parameter of another node is named by its full path.
    substeps = node.path() + "/dopnet1/pyrosolver1/substeps"
    variation = api.duplicate(job, {substeps: 4}, name=node.name() + " fine")
    _submit(node, variation)
