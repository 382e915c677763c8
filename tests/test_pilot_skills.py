"""Skill generators: correct answers in every format, length bounds, held-out sets disjoint."""

import numpy as np
import pytest

from forecast.pilot.data import IGNORE, collate, eval_problems, training_batch
from forecast.pilot.recipes import Phase, RecipeSpec
from forecast.pilot.facts import FactAdd, Facts, fact_table
from forecast.pilot.kinds import SKILL_KINDS
from forecast.pilot.skills import Addition, MultiplyDigit, SortDigits, Subtraction, WordProblem
from forecast.pilot.vocab import decode, encode


def test_addition_formats_lee_et_al():
    add = Addition(digits=3)
    assert add.render((128, 367), "plain").answer == "495"
    assert add.render((128, 367), "reverse").answer == "594"
    assert add.render((128, 367), "scratch_simple").answer == "a5c1,a9c0,a4c0>495"
    assert add.render((128, 367), "scratch_detailed").answer == "8+7+0=15a5c1,2+6+1=9a9c0,1+3+0=4a4c0>495"
    assert add.render((999, 1), "scratch_simple").answer == "a0c1,a0c1,a0c1>1000"
    assert {add.render((5, 7), f).prompt for f in add.formats} == {"5+7="}


@pytest.mark.parametrize("fmt", Addition.formats)
def test_addition_answers_are_correct(fmt):
    add = Addition(digits=4)
    for a, b in add.sample(np.random.default_rng(0), 500):
        answer = add.render((int(a), int(b)), fmt).answer
        final = answer.split(">")[-1]
        assert int(final[::-1] if fmt == "reverse" else final) == a + b
        if fmt.startswith("scratch"):  # each step's digit and carry follow the column sums
            carry = 0
            for x, y, step in zip(str(a).zfill(4)[::-1], str(b).zfill(4)[::-1], answer.split(">")[0].split(",")):
                total = int(x) + int(y) + carry
                assert step.endswith(f"a{total % 10}c{total // 10}")
                if fmt == "scratch_detailed":
                    assert step.startswith(f"{x}+{y}+{carry}={total}")
                carry = total // 10


def test_other_operations():
    rng = np.random.default_rng(1)
    for a, b in Subtraction(3).sample(rng, 300):
        assert a >= b and Subtraction(3).render((a, b), "plain").answer == str(a - b)
        assert Subtraction(3).render((a, b), "reverse").answer == str(a - b)[::-1]
    for a, b in MultiplyDigit(3).sample(rng, 300):
        assert 0 <= b <= 9 and int(MultiplyDigit(3).render((a, b), "plain").answer) == a * b
    assert SortDigits(5).render((5, 3, 8, 1, 0), "plain").answer == "01358"


def test_word_problem_is_add_then_subtract():
    word = WordProblem(digits=2)
    assert word.render((12, 35, 7), "plain").prompt == "has12 get35 give7?"
    assert word.render((12, 35, 7), "plain").answer == "40"
    assert word.render((12, 35, 7), "reverse").answer == "04"
    assert word.render((12, 35, 7), "steps").answer == "12+35=47,47-7=40"
    for a, b, c in word.sample(np.random.default_rng(2), 500):
        assert 0 <= c <= a + b and int(word.render((a, b, c), "plain").answer) == a + b - c


@pytest.mark.parametrize("kind", sorted(SKILL_KINDS))
def test_max_length_bounds_every_problem(kind):
    skill = SKILL_KINDS[kind]()
    problems = skill.sample(np.random.default_rng(3), 3000)
    for fmt in skill.formats:
        lengths = [len(e.prompt) + len(e.answer) for e in (skill.render(tuple(map(int, p)), fmt) for p in problems)]
        assert max(lengths) <= skill.max_length(fmt)
        example = skill.render(tuple(map(int, problems[0])), fmt)
        assert len(encode(example.prompt + example.answer)) == len(example.prompt + example.answer)  # in the vocabulary


def test_eval_sets_are_fixed_unique_and_held_out_of_training():
    skills = {"add": Addition(2), "sort": SortDigits(3)}
    sets = {n: eval_problems(s, 64, seed=7) for n, s in skills.items()}
    for name, problems in sets.items():
        assert len({tuple(p) for p in problems}) == 64
        np.testing.assert_array_equal(problems, eval_problems(skills[name], 64, seed=7))
    held_out = sets
    recipe = RecipeSpec("r", {"add": "reverse"}, (Phase({"add": 1.0, "sort": 1.0}),))
    seen = set()
    for step in range(1, 200):  # 200 x 64 draws from 10^4 + 10^3 problems: collisions are certain without exclusion
        batch = training_batch(skills, recipe, held_out, seed=0, step=step, batch_size=64)
        for row in batch.inputs.numpy():
            seen.add(decode(row).split("=")[0] + "=")
    eval_prompts = {skills[n].render(tuple(int(x) for x in p), "plain").prompt for n in sets for p in sets[n]}
    assert not seen & eval_prompts


def test_training_batches_are_a_function_of_seed_and_step():
    skills = {"add": Addition(2)}
    recipe = RecipeSpec("r", {}, (Phase({"add": 1.0}),))
    held = {"add": np.zeros((0, 2), dtype=np.int64)}
    a = training_batch(skills, recipe, held, seed=0, step=5, batch_size=16)
    b = training_batch(skills, recipe, held, seed=0, step=5, batch_size=16)
    c = training_batch(skills, recipe, held, seed=0, step=6, batch_size=16)
    assert a.inputs.equal(b.inputs) and not a.inputs.equal(c.inputs)


def test_curriculum_phases():
    recipe = RecipeSpec("c", {}, (Phase({"add": 1.0}, 10), Phase({"sort": 1.0}, 5), Phase({"add": 1.0, "sort": 1.0})))
    assert [set(recipe.phase_at(s).mix) for s in (1, 10, 11, 15, 16, 1000)] == [
        {"add"}, {"add"}, {"sort"}, {"sort"}, {"add", "sort"}, {"add", "sort"}]
    skills = {"add": Addition(2), "sort": SortDigits(3)}
    batch = training_batch(skills, recipe, {"add": np.zeros((0, 2), dtype=np.int64), "sort": np.zeros((0, 3), dtype=np.int64)}, 0, 12, 8)
    assert all(decode(row).startswith("s:") for row in batch.inputs.numpy())


def test_loss_only_on_answer_tokens():
    add = Addition(3)
    batch = collate([add.render((12, 345), "plain"), add.render((5, 5), "plain")])
    # '12+345=357$': inputs '12+345=357', targets are '357$' at the positions of '=', '3', '5', '7'
    assert decode(batch.inputs[0].numpy()) == "12+345=357"
    targets = batch.targets[0].numpy()
    assert decode(targets[targets != IGNORE]) == "357"
    assert (targets != IGNORE).sum() == 4 and targets[-1] == 1  # END is a target
    assert batch.lengths.tolist() == [10, 6] and batch.tokens == 16
    assert (batch.targets[1].numpy() != IGNORE).sum() == 3  # '10' + END; padding carries no target


@pytest.mark.parametrize("skill", [Addition(3), Addition(2, pad=True), Addition(1), SKILL_KINDS["sub"](3),
                                   SKILL_KINDS["sub"](2, pad=True), SKILL_KINDS["mul1"](3), SKILL_KINDS["mul1"](2, pad=True),
                                   SortDigits(5), SKILL_KINDS["word"](2), SKILL_KINDS["word"](1), SKILL_KINDS["word"](2, pad=True),
                                   Facts(), Facts(keys=37, values=7, phrasings=3, seed=5), FactAdd(), FactAdd(keys=12, values=10, phrasings=2)],
                         ids=repr)
def test_bulk_encoding_matches_rendered_text(skill):
    """`Skill.encode` (vectorised, used for training) writes exactly `encode(render(...))`
    for every format, zero operands and unequal operand lengths included."""
    problems = skill.sample(np.random.default_rng(1), 400)
    problems[:3] = 0
    for fmt in skill.formats:
        encoded = skill.encode(problems, fmt)
        for i, problem in enumerate(problems):
            example = skill.render(tuple(int(x) for x in problem), fmt)
            ids = encode(example.prompt + example.answer + "$")
            assert encoded.lengths[i] == len(ids) and encoded.prompt_lengths[i] == len(example.prompt), (fmt, example)
            assert (encoded.ids[i, : len(ids)] == ids).all() and (encoded.ids[i, len(ids):] == 0).all(), (fmt, example)


def test_facts_are_one_fixed_table_asked_in_phrasings():
    """`fact` answers the table's value of the key whatever the phrasing; the table depends on
    its own options only (not on any run's seed), and `factadd` adds a number to a value."""
    fact, total = Facts(keys=1500, values=100, phrasings=10), FactAdd(keys=1500, values=100, phrasings=10)
    table = fact_table(1500, 100, 0)
    assert table.shape == (1500,) and table.min() >= 0 and table.max() <= 99 and len(set(table.tolist())) == 100
    np.testing.assert_array_equal(table, fact_table(1500, 100, 0))
    assert (table != fact_table(1500, 100, 1)).mean() > 0.9  # another table seed, other facts
    v = {k: int(table[k]) for k in (7, 42, 1499)}
    assert fact.render((42, 0), "plain") == type(fact.render((42, 0), "plain"))("a0042=", f"{v[42]:02d}")
    assert {fact.render((42, p), "plain").answer for p in range(10)} == {f"{v[42]:02d}"}
    assert fact.render((42, 9), "reverse").prompt == "j0042=" and fact.render((42, 9), "reverse").answer == f"{v[42]:02d}"[::-1]
    assert total.render((7, 2, 5), "plain") == type(fact.render((42, 0), "plain"))("c0007+05=", f"{v[7] + 5:03d}")
    assert int(total.render((1499, 0, 99), "reverse").answer[::-1]) == v[1499] + 99
    assert fact.space == 15000 and total.space == 1500 * 10 * 100


def test_fact_held_out_set_asks_trained_facts_in_new_phrasings():
    """Held-out (key, phrasing) pairs never appear in training, yet every held-out key is
    trained under some other phrasing: the held-out set scores stored facts, not guesses."""
    fact = Facts(keys=50, values=100, phrasings=10)
    held = eval_problems(fact, 40, seed=3)
    recipe = RecipeSpec("r", {"fact": "plain"}, (Phase({"fact": 1.0}),))
    prompts = set()
    for step in range(1, 40):
        batch = training_batch({"fact": fact}, recipe, {"fact": held}, seed=0, step=step, batch_size=64)
        prompts |= {decode(row).split("=")[0] + "=" for row in batch.inputs.numpy()}
    held_prompts = {fact.render(tuple(int(x) for x in p), "plain").prompt for p in held}
    assert not prompts & held_prompts
    assert {int(p[1:-1]) for p in held_prompts} <= {int(p[1:-1]) for p in prompts}


def test_fact_options_are_checked_in_a_ladder_config(tmp_path):
    from forecast.errors import DataError
    from forecast.pilot.ladder import load_ladder

    text = (tmp_path / "ok.toml")
    base = ('name = "f"\n[skills]\nfact = {{ keys = {keys}, phrasings = 4 }}\n[sizes]\ns = {{ layers = 1, width = 16, heads = 2 }}\n'
            '[[recipes]]\nlabel = "r"\nmix = {{ fact = 1 }}\n')
    text.write_text(base.format(keys=1500))
    assert load_ladder(text).skills["fact"] == Facts(keys=1500, phrasings=4)
    text.write_text(base.format(keys=0))
    with pytest.raises(DataError, match="keys.*from 1 to 100000"):
        load_ladder(text)
