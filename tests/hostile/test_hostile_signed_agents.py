"""Signed mode against share writers, with real agents (issue 9 Must-hold 2).

In signed mode everything that can choose code must be local or signed with the
farm key: the farm's config.yaml (it names profiles, executables and the policy),
renderer profiles, the lockdown policy and a user's Envy_Functions.py. Each test
writes the file a classmate would, sees it refused with a line naming it and the
agent still answering signed commands, then has the admin sign it and sees it used.
"""

from __future__ import annotations

import json
from pathlib import Path

from envy.protocol.file_signing import sign_file
from envy.protocol.sender import InstructionSender
from envy.protocol.signing import KEY_ENV, keygen, load_key, make_signer
from envy.share.fs import REAL_FS
from farm import Farm, wait_for
from render_helpers import standin_profile, submit_folder


def signed_farm(farm: Farm, tmp_path: Path) -> tuple[bytes, InstructionSender]:
    key_path = keygen(tmp_path / "keys" / "signing.key")
    farm.env[KEY_ENV] = str(key_path)  # the key is kept off the share (signing.py)
    key = load_key(key_path)
    sender = farm.sender()
    sender.signer = make_signer(key)
    return key, sender


def printed(farm: Farm, host: str, text: str) -> bool:
    return f"print: {text}" in farm.log(host)


def answers(farm: Farm, sender: InstructionSender, host: str, marker: str) -> None:
    sender.send([f"* print('{marker}')"])
    wait_for(lambda: printed(farm, host, marker), 30, f"{host} to answer {marker!r}")


def test_signed_mode_an_unsigned_farm_config_holds_renders_and_an_unsigned_user_module_is_not_loaded(
    farm: Farm, tmp_path: Path
) -> None:
    key, sender = signed_farm(farm, tmp_path)
    ran = farm.root / "hello-ran"
    module = farm.layout.user_dir(farm.user) / "Envy_Functions.py"
    module.write_text(f"def hello():\n    open({str(ran)!r}, 'w').write('ran')\n")
    # A classmate's farm file: it names a profile of theirs. Unsigned, so none of its code keys count,
    # and renders wait (the policy it might name is unknown) until the admin signs it.
    profile = standin_profile(farm.share / "classmate.yaml", "classmate", "print('x')")
    config = farm.share / "config.yaml"
    config.write_text(f"profiles: [{json.dumps(str(profile))}]\n")
    agent = farm.start_agent("lab1-01", signed=True)
    status = wait_for(lambda: (s := farm.status("lab1-01")) and s.get("state") == "locked" and s, 30,
                      "the agent to hold its renders")
    assert str(config) in status["locked_reason"] and "is not signed" in status["locked_reason"]
    assert f"{config} is not signed" in farm.log("lab1-01") and "ignoring its profiles" in farm.log("lab1-01")

    sender.send(["* NV.hello()"])
    answers(farm, sender, "lab1-01", "alive with an unsigned module")
    assert f"refusing {module} is not signed" in farm.log("lab1-01")
    assert not ran.exists()

    # The admin signs both files: a signed reload() uses them.
    sign_file(key, config, REAL_FS)
    sign_file(key, module, REAL_FS)
    sender.send(["* reload()", "* NV.hello()"])
    wait_for(ran.exists, 30, "the signed module's function to run")
    wait_for(lambda: (farm.status("lab1-01") or {}).get("state") == "idle", 30, "the hold to end")
    assert agent.alive()


def test_signed_mode_an_unsigned_policy_locks_and_an_unsigned_profile_renders_nothing(
    farm: Farm, tmp_path: Path
) -> None:
    key, sender = signed_farm(farm, tmp_path)
    pwned = farm.root / "pwned"
    (farm.share / "profiles").mkdir()
    evil = standin_profile(farm.share / "profiles" / "evil.yaml", "evil",
                           f"import sys; open({str(pwned)!r}, 'w'); open(sys.argv[-1], 'wb').write(b'i')")
    policy = farm.share / "policy.yaml"
    policy.write_text('limits:\n  - {hours: "00:00-24:00", machines: 5}\ncheck_every: 0.3\n')
    config = farm.share / "config.yaml"
    config.write_text(f"profiles: [{json.dumps(str(evil))}]\npolicy: {json.dumps(str(policy))}\n")
    sign_file(key, config, REAL_FS)  # the farm file is the admin's; the profile and the policy are not signed
    shots = farm.root / "shots"
    shots.mkdir()
    (shots / "shot.0001.frame").write_text("{}")
    submit_folder(farm.share, shots, renderer="evil", profiles=[evil])

    farm.start_agent("lab1-01", signed=True)
    status = wait_for(lambda: (s := farm.status("lab1-01")) and s.get("state") == "locked" and s, 30,
                      "the agent to be locked by the unsigned policy")
    assert "no usable lockdown policy" in status["locked_reason"] and str(policy) in status["locked_reason"]

    sign_file(key, policy, REAL_FS)
    sender.send(["* reload()"])  # the policy is read again at once (else at its next check)
    wait_for(lambda: (farm.status("lab1-01") or {}).get("state") != "locked", 30, "the signed policy to apply")
    sender.send(["* render()"])
    wait_for(lambda: f"refusing {evil} is not signed" in farm.log("lab1-01"), 30, "the profile's refusal")
    answers(farm, sender, "lab1-01", "alive after the unsigned profile")
    assert not pwned.exists()

    sign_file(key, evil, REAL_FS)  # signed by the admin, the same profile renders
    sender.send(["* render()"])
    wait_for(pwned.exists, 60, "the signed profile to render")
