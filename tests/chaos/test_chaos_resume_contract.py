"""The server's resume contract, exactly: `resume {after: X}` replays every owed id
above X and nothing at or below it.

The load generator's default resume margin (--resume-margin 1.5s) asks for more than
it needs, which keeps users' apps with looser id order from looking lossy, but also
hides an off-by-one in the server: a replay of the client's own last id is counted
as the expected overlap. Here the margin is 0, so the client resumes from the newest
id it received, and any replayed key it already had is the server's doing.
"""

import pytest

from tests.chaos.chaos_support import counts, standard_load

pytestmark = pytest.mark.chaos


@pytest.mark.gauntlet(broker="postgres")
def test_resume_with_no_margin_replays_nothing_the_client_had(gauntlet_load, gauntlet_nemesis, gauntlet_verdict):
    standard_load(gauntlet_load, seconds=20, extra=("--resume-margin", "0"))
    gauntlet_load.sleep_until(6)
    gauntlet_nemesis.fault("kill", "r2", hold=4)
    checked = gauntlet_verdict()
    c = counts(checked)
    data = checked.data()
    resumes = data.conn[data.conn["event"] == "resume"]
    assert len(resumes) >= 3, "the kill should have made r2's subscribers resume"
    assert c["resume_overlap_frames"] == 0, \
        f"{c['resume_overlap_frames']} replayed frames were keys the subscriber had already: a resume " \
        "from the newest id seen must replay only newer ids"
    # Replays of one connection come in id order (the server reads history ascending).
    # How many there are depends on how fast each socket came back; none is no defect.
    replays = data.recv[data.recv["replay"]].sort_values(["sub", "conn", "ts"], kind="stable")
    backwards = (replays.groupby(["sub", "conn"], observed=True)["id"].diff() < 0).fillna(False)
    assert not backwards.any(), replays[backwards.to_numpy()].head(5).to_dict("records")
