"""The contributions view's words keep signs, give shares only where signs agree, and do not draw an
Integrated Gradients map that has not converged."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from app import wording
from app.inputs import InputError
from app.ranges import IG_STEPS, SAMPLES, SEED, TEMPERATURE, query_token


def test_positive_values_get_a_share():
    names = ("rgb", "depth")
    assert wording.effects(names, [0.3, 0.1], "the wall logit") == \
        "rgb raises the wall logit by 0.3; depth raises it by 0.1."
    assert wording.share(names, [0.3, 0.1]) == "Both push the same way: rgb gives 75% of the rise."


def test_negative_values_get_a_share_of_the_fall():
    names = ("rgb", "depth")
    assert wording.effects(names, [-0.3, -0.1], "the wall logit") == \
        "depth lowers the wall logit by 0.1; rgb lowers it by 0.3."
    assert wording.share(names, [-0.3, -0.1]) == "Both push the same way: rgb gives 75% of the fall."


def test_mixed_signs_give_both_values_and_no_share():
    names = ("rgb", "depth")
    # the case from issue 11: once reported as "rgb carries 77 % of the attribution"
    assert wording.effects(names, [-0.205, 0.060], "the wall logit") == \
        "depth raises the wall logit by 0.06; rgb lowers it by 0.205."
    assert wording.share(names, [-0.205, 0.060]) == "They pull in opposite directions, so no share is given."
    assert "%" not in wording.share(names, [-0.205, 0.060])
    # a value said to leave the target unchanged pulls no way: the other carries the change
    assert wording.effects(names, [0.5, -1e-4], "the wall logit") == \
        "rgb raises the wall logit by 0.5; depth leaves it unchanged."
    assert wording.share(names, [0.5, -1e-4]) == "Only rgb moves it: 100% of the rise."


def test_tiny_and_large_values():
    assert wording.effect("depth", 1e-5, "the wall logit") == "depth leaves the wall logit unchanged"
    assert wording.effect("rgb", -3714.2, "log p") == "rgb lowers log p by 3,714"
    assert wording.share(("a", "b"), [0.0, 0.0]) == "Neither changes it."


def test_likelihood_sign_is_explained():
    less = wording.likelihood(["depth"], [0.512])
    assert "0.512 more bits/dim" in less and "**less** likely" in less and "useful" not in less
    more = wording.likelihood(["rgb"], [-0.242])
    assert "0.242 fewer bits/dim" in more and "**more** likely" in more and "whether rgb is useful" in more
    # the caveat is said once, after both, naming each modality it is about
    both = wording.likelihood(["poster", "plot"], [-0.0958, -1.6])
    assert both.count("featureless") == 1 and both.endswith("whether poster or plot is useful for the prediction.")
    assert both.index("Without plot") < both.index("featureless")
    mixed = wording.likelihood(["rgb", "depth"], [-0.2, 0.3])
    assert "whether rgb is useful" in mixed and mixed.index("Without depth") < mixed.index("featureless")
    assert "density" in wording.NEGATIVE_BITS and "negative" in wording.NEGATIVE_BITS


@pytest.fixture(scope="module")
def runner():
    from app.checkpoints import TASK_SPECS, LoadedModel, untrained_model
    from app.handlers import Runner

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    spec = TASK_SPECS["segmentation"]
    yield Runner(LoadedModel(spec, untrained_model(spec), "untrained", "freshly initialised"))
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_a_map_that_has_not_converged_is_not_drawn(runner, scene, monkeypatch):
    from app import handlers
    from mango import interpret

    real = interpret.integrated_gradients
    bars, ig_fig, _, summary = runner.contributions(scene.file("rgb"), scene.file("depth"), "wall", 32)
    assert "Integrated Gradients total" in [trace.name for trace in bars.data]
    assert len(ig_fig.data) >= 4 and "within the 5% limit" in summary  # two images and two maps
    assert "a check of both totals' sum, not of each" in summary
    # what "removed" put in each modality's place, in its units (the segmentation depth reads 0-10 m)
    assert ("**Removing** a modality here puts in its place: rgb → ImageNet's mean colour (a warm grey) everywhere; "
            "depth → a flat wall at 5 m everywhere.") in summary

    def unconverged(*args, **kwargs):
        result = real(*args, **kwargs)
        return dataclasses.replace(result, delta=result.change * 0.5 + 1.0)

    monkeypatch.setattr(handlers.interpret, "integrated_gradients", unconverged)
    bars, ig_fig, _, summary = runner.contributions(scene.file("rgb"), scene.file("depth"), "wall", 32)
    assert "Integrated Gradients total" not in [trace.name for trace in bars.data]
    assert len(ig_fig.data) == 0 and "did not converge" in ig_fig.layout.annotations[0].text
    assert "**not converged**" in summary and "tried 32 to 128 steps" in summary  # doubled up to the slider's end


def test_steps_outside_the_slider_range_are_refused(runner, scene):
    from app.inputs import InputError
    from app.ranges import IG_STEPS

    low, high = int(IG_STEPS.minimum), int(IG_STEPS.maximum)
    for bad in (low - 1, high + 1, "many"):
        with pytest.raises(InputError):
            runner.contributions(scene.file("rgb"), scene.file("depth"), "wall", bad)


def test_a_removed_modality_is_named_in_its_units():
    from mango.data.transforms import TASKONOMY_DEPTH_LOG_MAX

    assert wording.removed_as("depth", (0.5,), depth_max=8.0) == "a flat wall at 4 m everywhere"
    # Taskonomy depth is log(1 + raw) / 11.1 with raw in 1/512 m: 0.5 is exp(5.55) / 512, about 0.5 m
    assert wording.removed_as("depth_zbuffer", (0.5,)) == "a flat wall at 0.5 m everywhere"
    assert abs(((2.718281828 ** (0.5 * TASKONOMY_DEPTH_LOG_MAX)) - 1) / 512 - 0.5) < 0.01
    assert wording.removed_as("normal", (0.5, 0.5, 0.5)).startswith("no surface direction")
    assert wording.removed_as("reshading", (0.5,)) == "a uniform shading of 50% of white"
    assert wording.removed_as("edge_texture", (0.25,)) == "an edge strength of 0.25 (on its 0–1 scale) everywhere"
    assert wording.removed_as("plot", ()) == "an empty plot"
    assert wording.removed_as("poster", (0.485, 0.456, 0.406)).startswith("ImageNet's mean colour")
    assert wording.removed_as("thermal", (0.3,)) == "the constant value 0.30 (of the input's range) everywhere"


# -- found unguarded by a second mutation audit (each fails on its mutant) ---------------------------------


def test_a_value_that_is_not_a_number_is_not_said_to_lower_anything():
    assert wording.effect("rgb", float("nan"), "the wall logit") == "rgb: no value"
    assert wording.effect("rgb", float("inf"), "the wall logit") == "rgb: no value"


def test_a_small_likelihood_change_is_still_said():
    assert "0.005 more bits/dim" in wording.likelihood(["depth"], [0.005])
    assert "does not change" in wording.likelihood(["depth"], [5e-6])


def test_the_sliders_own_ends_are_accepted():
    assert TEMPERATURE.check(1.5) == 1.5 and TEMPERATURE.check(0.1) == 0.1
    assert IG_STEPS.check(128) == 128 and SAMPLES.check(8) == 8 and SEED.check(2**32 - 1) == 2**32 - 1


def test_whole_number_parameters_refuse_fractions_and_booleans():
    with pytest.raises(InputError, match="whole number; got 2.5"):
        SAMPLES.check(2.5)
    with pytest.raises(InputError, match="whole number"):
        SEED.check("3.5")
    for bad in (True, False):
        with pytest.raises(InputError, match="number of samples"):
            SAMPLES.check(bad)
    assert SAMPLES.check("3") == 3 and isinstance(SAMPLES.check(3.0), int)


def test_the_query_token_index_stops_at_the_last_token():
    index = query_token(64)
    assert index.check(63) == 63 and index.check(0) == 0
    with pytest.raises(InputError, match="from 0 to 63"):
        index.check(64)


# -- found unguarded by a sixth mutation audit (each fails on its mutant) ----------------------------------


def test_the_help_text_states_the_convergence_limit_and_the_step_limit_the_handler_uses():
    """The Modality contributions help promises when IG steps are doubled and up to where: the same
    tolerance (`interpret.IG_TOLERANCE`) and the slider's last value (`IG_STEPS.maximum`) the handler uses."""
    from app import texts
    from mango import interpret

    said = " ".join(texts.CONTRIBUTIONS.split())
    assert (f"when it exceeds {interpret.IG_TOLERANCE:.0%}".replace("%", " %") + " of that change the steps are doubled "
            f"(up to {int(IG_STEPS.maximum)})") in said


@pytest.fixture(scope="module")
def bundled_runners():
    from app.checkpoints import TASK_SPECS, load_task_model
    from app.handlers import Runner

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    runners = {task: Runner(load_task_model(TASK_SPECS[task])) for task in ("segmentation", "genre")}
    if not all(r.loaded.trained for r in runners.values()):
        pytest.skip("the bundled checkpoints are not there")
    yield runners
    torch.set_num_threads(threads)


def _baseline_output(runner, prepared) -> torch.Tensor:
    from mango import interpret

    with torch.no_grad():
        return runner.model(*interpret.modality_baselines(runner.model, *runner.inputs(prepared))).output


@pytest.mark.slow
def test_a_target_the_removed_pair_already_predicts_is_said_to_start_there(bundled_runners, film, scene):
    """Attributions are changes from the pair with both modalities removed. Where that pair is itself
    predicted as the explained class (the mean poster with an empty plot: the bundled genre model's Drama),
    the summary says so, and what a negative value then means; where it is not, it says nothing."""
    genre, segmentation = bundled_runners["genre"], bundled_runners["segmentation"]
    cases = [(genre, (film.poster, film.plot), name) for name in ("Drama", "Comedy")]
    cases += [(segmentation, (scene.file("rgb"), scene.file("depth")), name) for name in ("wall", "floor")]
    said: dict[str, set[bool]] = {"genre": set(), "segmentation": set()}
    for runner, inputs, name in cases:
        prepared = runner.prepare(*inputs)
        index = list(runner.config.class_names).index(name)
        baseline = _baseline_output(runner, prepared)
        output = runner.predict(prepared).output
        if runner.config.task == "genre":  # the model's own decision on the removed pair, computed here
            expected = float(torch.sigmoid(baseline[0, index])) > runner.thresholds()[index]
        else:
            region = output.argmax(dim=1) == index
            region = region if bool(region.any()) else torch.ones_like(region)
            expected = float((baseline.argmax(dim=1) == index)[region].float().mean()) >= 0.5
        summary = runner.contributions(*inputs, name, 8)[3]
        shown = f"**The starting point already predicts {name}:** with both modalities removed" in summary
        assert shown == expected, (runner.config.task, name, summary)
        if shown:
            shapley = summary.split("- **Shapley values:** ")[1].split("\n")[0]
            assert ("A negative one means that modality lowers" in summary) == (" lowers the " in shapley)
        said[runner.config.task].add(shown)
    assert said == {"genre": {True, False}, "segmentation": {True, False}}  # neither half of the check is empty


def test_a_convergence_delta_too_small_for_one_decimal_is_not_said_to_be_zero():
    from app.contributions_view import _percent

    assert _percent(7e-4, -2.233) == "<0.1%"  # seen as "0.0%" on a real film
    assert _percent(0.0, 1.0) == "0.0%" and _percent(-0.004, 0.1) == "4.0%" and _percent(0.3, 0.2) == "150.0%"
    assert _percent(0.1, 0.0) == "all" and _percent(0.0, 0.0) == "0%"


def test_a_second_baseline_s_split_is_compared_with_the_first():
    names = ("rgb", "depth")
    agree = wording.same_split(names, [0.9, 0.03], [0.5, 0.1])
    assert agree.startswith("As against the constant baseline, rgb moves it more") and "⚠️" not in agree
    led = wording.same_split(names, [3.7, 1.0], [1.4, 2.3])
    assert led.startswith("⚠️ Not the split above: depth moves it more here, rgb against the constant baseline.")
    turned = wording.same_split(names, [3.7, 0.5], [1.4, -0.2])
    assert "depth pushes it the other way here" in turned and "moves it more here" not in turned
    assert "rgb leaves it unchanged here" in wording.same_split(names, [0.05, -0.14], [1e-4, -0.16])
    assert "rgb moves it only here" in wording.same_split(names, [1e-4, -0.14], [0.05, -0.16])


@pytest.mark.slow
def test_the_summary_gives_the_split_against_blurred_images_too(bundled_runners, scene, film):
    """Each explanation also gives the Shapley values against a second baseline (each image blurred by one
    patch), computed here independently, and whether they tell the story of the first."""
    from mango import interpret

    for runner, inputs, name in ((bundled_runners["segmentation"], (scene.file("rgb"), scene.file("depth")), "floor"),
                                 (bundled_runners["genre"], (film.poster, film.plot), "Comedy")):
        prepared = runner.prepare(*inputs)
        target, _ = runner.target(prepared, name)
        a, b = runner.inputs(prepared)
        first = interpret.exact_shapley(interpret.coalition_values(runner.model, a, b, [target])[0])[0].tolist()
        second = interpret.exact_shapley(interpret.coalition_values(
            runner.model, a, b, [target], baselines=interpret.blurred_baselines(runner.model, a, b))[0])[0].tolist()
        assert max(abs(x - y) for x, y in zip(first, second)) > 0.05  # the baseline matters, so the line says something
        labels = list(runner.labels())
        bars, _, _, summary = runner.contributions(*inputs, name, 8)
        line = next(line for line in summary.split("\n") if line.startswith("- **Against a second baseline** "))
        side = runner.config.image_size // runner.config.grid[1]
        assert f"σ = {side} px, one patch of the model's {runner.config.image_size} px" in line
        assert ("the plot still empty" in line) == (runner.text_key is not None)
        assert line.endswith(wording.effects(labels, second, f"the {name} logit") + " "
                             + wording.same_split(labels, first, second))
        # and beside the first in the chart, the same values
        drawn = next(trace for trace in bars.data if trace.name.startswith("Shapley value, blurred baseline"))
        assert list(drawn.y) == labels and list(drawn.x) == pytest.approx(second, abs=1e-6)
