#!/usr/bin/env python3
"""make-sample.py — writes data/sample/tulu_sample.jsonl, attnbench's built-in conversation corpus.

The material below was written for this project: topics, each with question/answer exchanges and follow-ups.
A conversation takes one topic, sometimes a system prompt, and one to five of its exchanges in order (some
with a follow-up turn), so many conversations are multi-turn and some run past 512 GPT-2 tokens. The choice
is seeded: the output is the same on every run. Format: Tulu-v2 SFT JSONL (dataset, id, messages).

usage: python3 tools/make-sample.py [--out data/sample/tulu_sample.jsonl] [--count 320] [--seed 20240520]
"""
import argparse
import json
import random

GENERAL_PROMPTS = [
    "You are a helpful assistant.",
    "You are a patient tutor. Explain things step by step and check the student's understanding.",
    "You are a concise assistant. Keep answers short unless asked for detail.",
]
# System prompts that suit some topics only.
TOPIC_PROMPTS = [
    ("You are an experienced software engineer who reviews code carefully and explains trade-offs.",
     {"python_lists", "git", "sql_basics", "c_pointers", "bash", "rust_ownership", "docker", "javascript_async",
      "data_structures", "hardware_gpu", "machine_learning", "networking"}),
    ("You are a friendly cooking assistant for home cooks.", {"sourdough", "cooking_weeknight", "nutrition"}),
    ("You answer questions about science accurately and say when something is uncertain.",
     {"photosynthesis", "climate", "astronomy", "physics_everyday", "linear_algebra", "statistics", "nutrition"}),
    ("You are a travel planner who gives practical, budget-aware advice.", {"budget_travel_japan"}),
    ("You help people write clearly. Prefer plain words over jargon.",
     {"email_writing", "writing_story", "job_interview", "project_management"}),
]


def system_prompts_for(topic_name):
    return GENERAL_PROMPTS + [prompt for prompt, topics in TOPIC_PROMPTS if topic_name in topics]


# Each topic: list of (user, assistant) exchanges, and follow-ups usable after any exchange of the topic.
TOPICS = {
    "sourdough": {
        "exchanges": [
            ("How do I start a sourdough starter from scratch?",
             "Mix equal weights of whole-grain flour and lukewarm water, about 50 g each, in a clean jar. Cover it "
             "loosely and keep it somewhere around 24-26 °C. Every 24 hours, discard all but about 50 g and feed it "
             "again with 50 g flour and 50 g water. For the first few days you may see a burst of bubbles followed by "
             "a quiet spell; that is normal, because the first bacteria to grow are not the ones you want. After one to "
             "two weeks the starter should reliably double within 4-8 hours of a feed and smell pleasantly sour. Once "
             "it does that three days in a row, it is ready to bake with."),
            ("My starter smells like nail polish remover. Is it ruined?",
             "No. That acetone-like smell usually means the starter is hungry: the yeast and bacteria have run out of "
             "food and are producing more acetic acid and other by-products. Feed it more often, or use a larger feed "
             "ratio such as 1 part starter to 5 parts flour and 5 parts water. Within a day or two the smell should go "
             "back to a mild, yogurt-like sourness. Throw it away only if you see pink or orange streaks or fuzzy mould."),
            ("What hydration should a beginner use for their first loaf?",
             "Start around 68-70% hydration, meaning 680-700 g of water for every kilogram of flour. Wetter doughs give "
             "a more open crumb but are harder to shape, and a first loaf teaches you more if the dough is manageable. "
             "Once you can shape a tight ball and get a good rise, raise the water by 2-3% at a time."),
            ("How can I tell when bulk fermentation is done?",
             "Look for several signs together rather than watching the clock: the dough has grown by roughly 50-75%, "
             "the surface is domed and smooth, you can see bubbles on the sides and top, and it jiggles when you shake "
             "the container. A straight-sided container with a rubber band marking the starting level makes the rise "
             "easy to judge. In a warm kitchen this may take 4 hours; in a cool one, 8 or more."),
        ],
        "followups": [
            ("Can I keep the starter in the fridge between bakes?",
             "Yes. Feed it, let it sit at room temperature for an hour or two, then refrigerate it. It will keep for a "
             "week or two between feeds. Give it one or two room-temperature feeds before you bake so it is active again."),
        ],
    },
    "python_lists": {
        "exchanges": [
            ("What's the difference between a list and a tuple in Python?",
             "Both are ordered sequences, but a list is mutable and a tuple is not. You can append to, remove from and "
             "reassign elements of a list; a tuple's contents are fixed once it is created. Because tuples are immutable "
             "and hashable (when their elements are), they can be used as dictionary keys or set members. Use a list for "
             "a collection that changes, and a tuple for a fixed record such as a pair of coordinates."),
            ("Why does this print [1, 2, 3, 4] twice?\n\n```python\na = [1, 2, 3]\nb = a\nb.append(4)\nprint(a)\nprint(b)\n```",
             "Because `b = a` does not copy the list. It makes `b` a second name for the same list object, so appending "
             "through `b` changes the one list that both names refer to. If you want an independent copy, write "
             "`b = a.copy()` or `b = list(a)`. For nested lists you need `copy.deepcopy(a)`, since a shallow copy still "
             "shares the inner lists."),
            ("How do I remove duplicates from a list but keep the order?",
             "Use a dictionary, which keeps insertion order since Python 3.7:\n\n```python\nitems = [3, 1, 3, 2, 1]\n"
             "unique = list(dict.fromkeys(items))\nprint(unique)  # [3, 1, 2]\n```\n\nConverting to a `set` also removes "
             "duplicates, but it does not preserve the original order."),
            ("Is a list comprehension faster than a for loop?",
             "Usually a little, yes. A comprehension avoids repeated lookups of the `append` method and runs the loop in "
             "specialised bytecode, so for simple transformations it is often 10-30% faster. The bigger reason to use "
             "one is readability: `[x * x for x in values if x > 0]` states the intent in one line. If the body needs "
             "several statements or has side effects, a plain loop is clearer."),
        ],
        "followups": [
            ("Could you show that as a function with a docstring?",
             "Sure:\n\n```python\ndef unique_in_order(items):\n    \"\"\"Return the items without duplicates, keeping the "
             "first occurrence of each.\"\"\"\n    return list(dict.fromkeys(items))\n```\n\nIt works for any hashable "
             "items, such as numbers, strings or tuples."),
        ],
    },
    "photosynthesis": {
        "exchanges": [
            ("Explain photosynthesis to a 10-year-old.",
             "Plants make their own food using sunlight. Their leaves take in carbon dioxide from the air, and their "
             "roots pull up water from the soil. Inside the leaves there is a green substance called chlorophyll that "
             "catches sunlight. The plant uses that light energy to turn the water and carbon dioxide into sugar, which "
             "it uses to grow. Oxygen is left over, and the plant lets it out into the air, which is lucky for us "
             "because we need oxygen to breathe."),
            ("What are the light-dependent and light-independent reactions?",
             "The light-dependent reactions happen in the thylakoid membranes of the chloroplast. Light excites "
             "electrons in chlorophyll; their energy is used to split water, releasing oxygen, and to make ATP and "
             "NADPH. The light-independent reactions, also called the Calvin cycle, take place in the stroma. They use "
             "that ATP and NADPH to fix carbon dioxide into three-carbon sugars, which the plant then builds into "
             "glucose, sucrose and starch. The second stage does not need light directly, but it stops soon after the "
             "light does, because it runs on the products of the first."),
            ("Why are most plants green and not black?",
             "Chlorophyll absorbs red and blue light strongly but reflects much of the green, so leaves look green. A "
             "black leaf would absorb more of the spectrum, and it is a good question why evolution did not favour it. "
             "One idea is that absorbing everything would overheat leaves and damage the photosynthetic machinery under "
             "strong sun; another is that the pigments plants inherited from their algal ancestors were already tuned "
             "to the light available in water. Researchers still debate how much each explanation contributes."),
        ],
        "followups": [
            ("So do plants breathe at night?",
             "They respire all the time, day and night, taking in oxygen and releasing carbon dioxide to release energy "
             "from sugar. During the day photosynthesis outpaces respiration, so the net flow is oxygen out. At night "
             "only respiration happens, so a plant releases a small amount of carbon dioxide."),
        ],
    },
    "git": {
        "exchanges": [
            ("How do I undo my last git commit but keep the changes?",
             "Run `git reset --soft HEAD~1`. That moves the branch back one commit and leaves the changes staged, so "
             "you can edit them and commit again. If you want the changes unstaged instead, use `git reset HEAD~1` "
             "(the default `--mixed` mode). Avoid `--hard` unless you really want to throw the changes away. If you had "
             "already pushed the commit, prefer `git revert HEAD`, which adds a new commit that undoes it without "
             "rewriting shared history."),
            ("What's the difference between merge and rebase?",
             "Both bring the changes of one branch into another. `git merge main` creates a merge commit that ties the "
             "two histories together and keeps every original commit as it was. `git rebase main` replays your "
             "branch's commits on top of main, producing new commits with a straight-line history. Rebasing makes the "
             "log easier to read, but it rewrites commits, so do it only on branches nobody else has based work on. A "
             "common practice is to rebase your own feature branch to tidy it, then merge it into main."),
            ("I accidentally committed a file with a password. What should I do?",
             "First, treat the password as compromised and change it right away; removing it from git does not undo "
             "anyone having copied it. Then remove the file from history. For the latest commit only, `git rm --cached "
             "secrets.env`, add it to `.gitignore`, and `git commit --amend`. If it is deeper in history, use a tool "
             "such as `git filter-repo` to rewrite every commit that contains it, then force-push and ask collaborators "
             "to re-clone. Finally, consider a pre-commit hook that scans for secrets so it does not happen again."),
            ("How do I see which commit introduced a bug?",
             "Use `git bisect`. Start with `git bisect start`, mark the current commit as bad with `git bisect bad`, "
             "and mark a commit you know worked with `git bisect good <hash>`. Git checks out a commit halfway between; "
             "you test it and answer `git bisect good` or `git bisect bad`. After about log2(n) steps it names the "
             "first bad commit. If you have a script that exits non-zero on failure, `git bisect run ./test.sh` does "
             "the whole search automatically. Finish with `git bisect reset`."),
        ],
        "followups": [
            ("Thanks. Is there a way to see what I'm about to push?",
             "Yes: `git log origin/main..HEAD --oneline` lists the commits you have that the remote does not, and "
             "`git diff origin/main...HEAD` shows the combined changes. Run `git fetch` first so your view of the "
             "remote is current."),
        ],
    },
    "budget_travel_japan": {
        "exchanges": [
            ("I have 10 days in Japan on a tight budget. Is the JR Pass worth it?",
             "It depends on your route. After the 2023 price increase, the 7-day pass costs about as much as a "
             "Tokyo-Kyoto-Tokyo round trip plus one more long shinkansen ride. If you plan to go Tokyo to Kyoto and "
             "Osaka and back, separate tickets are usually cheaper. If you also want Hiroshima or a trip north to "
             "Sendai, the pass starts to pay off. Add up the fares on a route planner first, then compare."),
            ("Where should a budget traveler stay in Kyoto?",
             "Look at guesthouses and hostels near Kyoto Station or along the Keihan line near Gion-Shijo. Both areas "
             "have good transport, and the station area in particular makes day trips to Nara and Osaka easy. Private "
             "rooms in guesthouses often cost half of a business hotel. Book early for spring and autumn, when "
             "prices rise sharply."),
            ("What are some cheap ways to eat well in Japan?",
             "Convenience stores are better than their reputation: onigiri, salads and hot dishes cost a few hundred "
             "yen. Chain restaurants for gyudon, curry and udon serve a filling meal for 500-900 yen. Many restaurants "
             "offer set lunches that are much cheaper than the same food at dinner. In the evening, supermarkets mark "
             "down bento and sushi, often by 30-50%, an hour or two before closing."),
        ],
        "followups": [
            ("Do I need cash or can I pay by card everywhere?",
             "Cards are accepted much more widely than a decade ago, but small restaurants, temples and rural shops "
             "still often take cash only. Carry 10,000-20,000 yen. Convenience store ATMs, especially at 7-Eleven, "
             "accept foreign cards."),
        ],
    },
    "email_writing": {
        "exchanges": [
            ("Can you help me write a polite email asking my manager for a day off next Friday?",
             "Of course. Here is a short draft:\n\nSubject: Leave request for Friday, 14 June\n\nHi Maria,\n\nI'd like to "
             "take a day of annual leave next Friday, 14 June. I'll finish the quarterly summary by Thursday afternoon, "
             "and Tom has agreed to cover any urgent client questions while I'm out.\n\nPlease let me know if that works "
             "for you.\n\nThanks,\nSam\n\nAdjust the names and details, and mention anything your team usually needs to "
             "know before someone is away."),
            ("How do I say no to a meeting without sounding rude?",
             "Be brief, give a reason if you have one, and offer an alternative. For example: \"Thanks for including "
             "me. I won't be able to join on Tuesday because I'm finishing the release. Could you share the notes "
             "afterwards? If there's anything you need from me, I'm happy to reply by email.\" Declining with a clear "
             "alternative usually comes across as organised rather than rude."),
            ("Make this sentence clearer: 'Due to the fact that the system was not functioning in an optimal manner, "
             "the decision was made to postpone the deployment.'",
             "\"We postponed the deployment because the system wasn't working properly.\"\n\nThe rewrite replaces "
             "\"due to the fact that\" with \"because\", turns the passive \"the decision was made\" into an active "
             "sentence with a clear subject, and drops the inflated phrase \"in an optimal manner\"."),
        ],
        "followups": [
            ("Can you make it a bit more formal?",
             "Certainly: \"We have postponed the deployment because the system was not performing reliably.\" It keeps "
             "the same structure but uses fuller forms and a slightly more formal verb."),
        ],
    },
    "sql_basics": {
        "exchanges": [
            ("Write a SQL query that finds the top 5 customers by total order value.",
             "Assuming tables `customers(id, name)` and `orders(id, customer_id, amount)`:\n\n```sql\nSELECT c.id, c.name, "
             "SUM(o.amount) AS total\nFROM customers c\nJOIN orders o ON o.customer_id = c.id\nGROUP BY c.id, c.name\n"
             "ORDER BY total DESC\nLIMIT 5;\n```\n\nThe join attaches orders to customers, `GROUP BY` adds them up per "
             "customer, and `ORDER BY ... LIMIT 5` keeps the five largest totals. On SQL Server, use `SELECT TOP 5` "
             "instead of `LIMIT`."),
            ("What is the difference between WHERE and HAVING?",
             "`WHERE` filters rows before they are grouped, and `HAVING` filters groups after aggregation. So to count "
             "orders over 100 per customer you would use `WHERE amount > 100`, but to keep only customers with more "
             "than 10 orders you would use `HAVING COUNT(*) > 10`. You cannot use an aggregate such as `SUM` in a "
             "`WHERE` clause."),
            ("My query with a LEFT JOIN returns fewer rows than I expected. Why?",
             "A common cause is a condition on the right-hand table in the `WHERE` clause. For example, `LEFT JOIN "
             "orders o ON ... WHERE o.status = 'paid'` removes every customer without a paid order, because for them "
             "`o.status` is NULL and the comparison is not true. That effectively turns the left join into an inner "
             "join. Move the condition into the join: `LEFT JOIN orders o ON o.customer_id = c.id AND o.status = 'paid'`."),
            ("When should I add an index?",
             "Add an index on columns you filter, join or sort by often, on tables large enough that a full scan is "
             "slow. Check with `EXPLAIN` that the query actually uses it. Indexes are not free: each one takes space "
             "and slows down inserts and updates, so avoid indexing every column. Composite indexes help when queries "
             "filter on several columns together; put the most selective equality column first."),
        ],
        "followups": [
            ("How would that look in PostgreSQL specifically?",
             "The same query runs unchanged in PostgreSQL. You could also write `FETCH FIRST 5 ROWS ONLY` instead of "
             "`LIMIT 5`, which is the SQL-standard form PostgreSQL supports too."),
        ],
    },
    "running": {
        "exchanges": [
            ("I want to run a 5K in eight weeks. I can currently jog for about 5 minutes. Where do I start?",
             "That is a realistic goal. Run three times a week with a rest day between runs. In week one, alternate "
             "one minute of easy jogging with ninety seconds of walking, eight times. Each week, lengthen the jogging "
             "intervals and shorten the walks, so that by week six you jog 20 minutes without stopping and by week "
             "eight you cover 5 km. Keep the pace easy enough to talk in full sentences. If a week feels too hard, "
             "repeat it rather than pushing through."),
            ("My shins hurt after running. Should I stop?",
             "Pain along the inside of the shin is often shin splints, an overuse problem common in new runners. Take "
             "a few days off running, or switch to cycling or swimming, and come back at a lower volume. Increase your "
             "weekly distance gradually, run on softer surfaces when you can, and check that your shoes are not worn "
             "out. If the pain is sharp, focused on one spot, or hurts when you walk, see a doctor: a stress fracture "
             "needs proper rest."),
            ("What should I eat before a morning run?",
             "For an easy run under an hour, many people run fine on an empty stomach or after something small like a "
             "banana or a slice of toast with honey, 30-60 minutes before. For longer or harder runs, eat a light "
             "carbohydrate breakfast 1-2 hours ahead. Avoid a lot of fat or fibre just before you run, and drink a "
             "glass of water when you get up."),
        ],
        "followups": [
            ("How do I know if I'm running too fast?",
             "Use the talk test: on easy runs you should be able to speak in full sentences. If you can only manage a "
             "few words, slow down. Most of a beginner's running should feel comfortable."),
        ],
    },
    "climate": {
        "exchanges": [
            ("What is the difference between weather and climate?",
             "Weather is the state of the atmosphere at a particular time and place: today's temperature, wind and "
             "rain. Climate is the statistical pattern of weather over a long period, usually 30 years or more, for a "
             "region. A cold week does not tell you much about the climate, just as one good day does not tell you "
             "about a whole season. Climate change refers to shifts in those long-term averages and extremes."),
            ("How do we know CO2 levels were lower in the past?",
             "The most direct record comes from ice cores drilled in Antarctica and Greenland. As snow compacts into "
             "ice it traps tiny bubbles of air, and measuring the carbon dioxide in those bubbles gives the "
             "atmosphere's composition when they were sealed. The oldest continuous cores go back about 800,000 years "
             "and show carbon dioxide between roughly 180 and 300 parts per million. Direct measurements at Mauna Loa "
             "since 1958 show a rise from about 315 ppm to over 420 ppm today."),
            ("Why does a small change in average temperature matter so much?",
             "An average hides the extremes. Shifting the whole distribution of daily temperatures by a degree or two "
             "makes hot extremes much more frequent, because the tail of the distribution moves past thresholds that "
             "crops, ecosystems and people are adapted to. For comparison, the last ice age was only about 5-6 °C "
             "colder on average than the pre-industrial climate, yet ice sheets covered much of North America and "
             "northern Europe."),
        ],
        "followups": [
            ("What can an individual realistically do?",
             "The biggest personal levers are usually how you heat your home, how you travel, especially flights, and "
             "how much red meat you eat. Beyond personal choices, supporting policies and organisations that cut "
             "emissions at scale tends to have a larger effect than any single household."),
        ],
    },
    "c_pointers": {
        "exchanges": [
            ("Why does this C code crash?\n\n```c\nchar *s;\nstrcpy(s, \"hello\");\n```",
             "`s` is an uninitialised pointer: it holds whatever value happened to be in that memory, so `strcpy` "
             "writes \"hello\" to a random address. That is undefined behaviour and often a segmentation fault. Give "
             "it storage first, either an array, `char s[16]; strcpy(s, \"hello\");`, or heap memory, `char *s = "
             "malloc(6);` followed by a check for NULL, the copy, and later `free(s)`. Remember the extra byte for the "
             "terminating NUL."),
            ("What's the difference between `char *p = \"abc\";` and `char a[] = \"abc\";`?",
             "`char a[] = \"abc\";` creates an array of four bytes, initialised from the literal, that you own and may "
             "modify. `char *p = \"abc\";` makes `p` point at the string literal itself, which lives in read-only "
             "storage: writing through `p` is undefined behaviour and usually crashes. That is why it is good style to "
             "write `const char *p = \"abc\";`. Also, `sizeof a` is 4, while `sizeof p` is the size of a pointer."),
            ("How do I return an array from a function in C?",
             "You cannot return an array by value, and you must not return a pointer to a local array, because it "
             "disappears when the function returns. The usual options are: let the caller pass in a buffer and its "
             "length, `void fill(int *out, size_t n)`; allocate with `malloc` and document that the caller frees it; "
             "or wrap a fixed-size array in a struct, which can be returned by value. Passing in a buffer is often the "
             "clearest because ownership stays with the caller."),
        ],
        "followups": [
            ("How can I catch mistakes like this automatically?",
             "Compile with warnings, `-Wall -Wextra`, and run your tests under AddressSanitizer, `-fsanitize=address`, "
             "which reports out-of-bounds and use-after-free errors with a stack trace. Valgrind is another option "
             "when you cannot rebuild."),
        ],
    },
    "history_printing": {
        "exchanges": [
            ("Why was the printing press so important?",
             "Before Gutenberg's press, around 1450, books in Europe were copied by hand, so they were rare and "
             "expensive. Movable metal type made it possible to print hundreds of identical copies quickly. Within "
             "fifty years millions of books were in circulation. That spread literacy, helped standardise languages "
             "and spelling, let scholars build on each other's work with identical texts, and made it much harder for "
             "authorities to control ideas, which played a part in the Reformation and the Scientific Revolution."),
            ("Did Gutenberg invent movable type?",
             "No. Movable type was used in China by Bi Sheng in the 11th century, with ceramic characters, and in "
             "Korea, where the Jikji, printed with metal type in 1377, is the oldest surviving book of its kind. "
             "Gutenberg's contribution was a complete system that worked well for alphabetic scripts: a hand mould for "
             "casting type quickly, an oil-based ink that stuck to metal, and a screw press adapted from wine and "
             "paper making."),
        ],
        "followups": [
            ("How many Gutenberg Bibles still exist?",
             "About 49 copies survive, complete or substantial, of the roughly 180 that were printed. Some are on "
             "paper and some on vellum."),
        ],
    },
    "personal_finance": {
        "exchanges": [
            ("How much should I keep in an emergency fund?",
             "A common guideline is three to six months of essential expenses: rent or mortgage, food, utilities, "
             "insurance and minimum debt payments. Aim for the higher end if your income is irregular, you are the "
             "only earner in your household, or your job would be hard to replace. Keep it somewhere safe and easy "
             "to reach, such as a high-interest savings account, rather than in investments that can fall in value "
             "just when you need the money."),
            ("Should I pay off debt or invest first?",
             "Compare the interest rate on the debt with the return you can reasonably expect. Paying off a credit "
             "card at 20% interest is a guaranteed 20% return, which no investment reliably beats, so clear high-rate "
             "debt first. For low-rate debt, such as a mortgage at 3%, investing at the same time often makes sense. "
             "One exception: if your employer matches pension contributions, contribute at least enough to get the "
             "full match, because that is an immediate return."),
            ("What is an index fund?",
             "An index fund holds all, or a representative sample, of the securities in a market index, such as the "
             "S&P 500 or a global stock index, so its performance follows that index. Because nobody is paid to pick "
             "stocks, fees are low, often below 0.2% a year. Over long periods most actively managed funds fail to "
             "beat their index after fees, which is why index funds are a popular core holding for long-term savers."),
        ],
        "followups": [
            ("Can you put that in a short checklist?",
             "1. Build a small starter buffer of one month's expenses.\n2. Get any employer pension match.\n3. Pay off "
             "high-interest debt.\n4. Grow the emergency fund to 3-6 months.\n5. Invest regularly in low-cost index "
             "funds."),
        ],
    },
    "linear_algebra": {
        "exchanges": [
            ("What does a matrix determinant actually mean?",
             "Geometrically, the determinant of a square matrix tells you how the linear map scales volume. A 2x2 "
             "matrix with determinant 3 turns the unit square into a parallelogram of area 3. A negative determinant "
             "means the map also flips orientation, like a mirror. A determinant of zero means the map squashes space "
             "into a lower dimension, so some information is lost and the matrix has no inverse."),
            ("How do I compute the determinant of [[2, 1], [5, 3]]?",
             "For a 2x2 matrix [[a, b], [c, d]], the determinant is ad - bc. Here that is 2 * 3 - 1 * 5 = 6 - 5 = 1. "
             "Since it is 1, the map keeps areas unchanged and preserves orientation, and the matrix is invertible. Its "
             "inverse is [[3, -1], [-5, 2]]."),
            ("What are eigenvectors, intuitively?",
             "An eigenvector of a matrix is a direction that the matrix only stretches or shrinks, without rotating it "
             "off its line. The eigenvalue is the stretch factor. If A v = 3 v, every vector along v is tripled in "
             "length. Eigenvectors reveal the natural axes of a transformation: for a covariance matrix they are the "
             "principal directions of the data, which is the idea behind principal component analysis."),
        ],
        "followups": [
            ("Can you check that inverse by multiplying?",
             "[[2, 1], [5, 3]] times [[3, -1], [-5, 2]] gives [[2*3 + 1*(-5), 2*(-1) + 1*2], [5*3 + 3*(-5), 5*(-1) + "
             "3*2]] = [[1, 0], [0, 1]], the identity, so it is correct."),
        ],
    },
    "houseplants": {
        "exchanges": [
            ("The leaves on my pothos are turning yellow. What am I doing wrong?",
             "The most common cause is overwatering. Pothos like their soil to dry out in the top few centimetres "
             "between waterings; constantly wet soil suffocates the roots. Check that the pot has drainage holes and "
             "that no water sits in the saucer. If only a few old leaves near the base yellow, that is normal ageing. "
             "If many leaves yellow and the soil smells sour, take the plant out and look for brown, mushy roots, which "
             "you should trim before repotting in fresh mix."),
            ("Which houseplants do well in low light?",
             "Good choices are the snake plant, ZZ plant, pothos, heartleaf philodendron, cast-iron plant and peace "
             "lily. Low light still means some daylight, such as a few metres from a window. In dim spots these "
             "plants grow slowly and need much less water, so let the soil dry out more between waterings."),
        ],
        "followups": [
            ("Are any of those safe for cats?",
             "The cast-iron plant is considered non-toxic to cats. Pothos, philodendron, peace lily, snake plant and "
             "ZZ plant can all irritate a cat's mouth and stomach if chewed, so keep them out of reach."),
        ],
    },
    "machine_learning": {
        "exchanges": [
            ("What is overfitting, and how do I detect it?",
             "Overfitting is when a model learns the training data too well, including its noise, so it performs "
             "worse on new data. The classic sign is a gap that opens during training: training loss keeps falling "
             "while validation loss levels off and then rises. To detect it, always hold out data the model never "
             "trains on. To reduce it, get more data, use a simpler model, add regularisation such as weight decay or "
             "dropout, use data augmentation, or stop training when validation loss stops improving."),
            ("Why do we need a separate test set if we already have a validation set?",
             "Because you use the validation set to make decisions: choosing hyperparameters, picking the best "
             "epoch, comparing architectures. Each decision leaks a little information about the validation data "
             "into your model, so your validation score becomes optimistic. The test set is touched once, at the "
             "end, to give an unbiased estimate of how the final model will do on new data."),
            ("Can you explain attention in transformers simply?",
             "For each token, attention computes how relevant every other token is and then mixes their information "
             "accordingly. Each token is projected into a query, a key and a value. The dot product of one token's "
             "query with every token's key gives relevance scores; a softmax turns them into weights that sum to "
             "one; and the output is the weighted average of the values. In a language model, a causal mask stops a "
             "token from attending to later tokens, so the model can only use the past to predict the next word. The "
             "cost grows with the square of the sequence length, which is why there is so much research on cheaper "
             "variants such as sliding windows, linear attention and grouped-query attention."),
            ("What is the learning rate warmup for?",
             "At the start of training the weights are random and the optimizer's running statistics, such as Adam's "
             "second-moment estimates, are unreliable. A large learning rate then can push the model into a bad "
             "region or make the loss diverge. Warmup increases the learning rate gradually, often linearly over the "
             "first few hundred or thousand steps, so the early updates are small while those statistics settle. "
             "It matters most for transformers trained with Adam at large batch sizes."),
        ],
        "followups": [
            ("What would a typical learning rate schedule look like for a small GPT model?",
             "A common choice is linear warmup over the first 1-5% of steps to a peak such as 6e-4, followed by cosine "
             "decay to about 10% of the peak by the end of training, with AdamW and weight decay 0.1."),
            ("Could you give a tiny numerical example?",
             "Take two tokens with scores 2 and 0 for a query. The softmax gives weights e^2/(e^2+1) = 0.88 and "
             "1/(e^2+1) = 0.12. If their values are 10 and 20, the output is 0.88*10 + 0.12*20 = 11.2, pulled mostly "
             "toward the more relevant token."),
        ],
    },
    "spanish_learning": {
        "exchanges": [
            ("What's the difference between 'ser' and 'estar' in Spanish?",
             "Both mean \"to be\". Use ser for identity and lasting characteristics: origin, profession, material, time "
             "and inherent traits, as in \"Soy de México\" or \"Ella es médica\". Use estar for states and conditions that "
             "can change, and for location: \"Estoy cansado\", \"La sopa está fría\", \"El museo está en el centro\". Some "
             "adjectives change meaning: \"es aburrido\" means he is boring, while \"está aburrido\" means he is bored."),
            ("How do I say 'I have been living here for three years'?",
             "The most natural form is \"Llevo tres años viviendo aquí.\" You can also say \"Vivo aquí desde hace tres "
             "años.\" Note that Spanish uses the present tense here, while English uses the present perfect continuous."),
        ],
        "followups": [
            ("Can you give me three more examples with 'llevar'?",
             "\"Llevo dos horas esperando\" (I've been waiting for two hours). \"Llevamos un mes sin verla\" (We haven't "
             "seen her for a month). \"¿Cuánto tiempo llevas estudiando español?\" (How long have you been studying "
             "Spanish?)"),
        ],
    },
    "astronomy": {
        "exchanges": [
            ("Why does the Moon always show the same face to Earth?",
             "Because it is tidally locked: it rotates once on its axis in the same time it takes to orbit Earth, "
             "about 27.3 days. Early in its history the Moon spun faster, but Earth's gravity raised tidal bulges in "
             "it, and the friction of those bulges slowed its rotation until the two periods matched. Thanks to "
             "libration, a slight wobble, we actually see about 59% of the surface over time."),
            ("How far away is the nearest star?",
             "Apart from the Sun, the nearest star is Proxima Centauri, about 4.24 light-years away, roughly 40 "
             "trillion kilometres. Its neighbours Alpha Centauri A and B are slightly farther, at about 4.37 "
             "light-years. Even the fastest spacecraft we have launched would need thousands of years to get there."),
            ("What is a black hole?",
             "A black hole is a region where matter is so compressed that its gravity prevents anything, even light, "
             "from escaping once it crosses the boundary called the event horizon. Stellar black holes form when very "
             "massive stars collapse at the end of their lives. Supermassive black holes, millions to billions of "
             "times the Sun's mass, sit at the centres of most large galaxies, including ours, where Sagittarius A* "
             "has about four million solar masses."),
        ],
        "followups": [
            ("How did they photograph one?",
             "The Event Horizon Telescope linked radio dishes across the world into an Earth-sized virtual telescope. "
             "It imaged the glowing gas around the black hole in galaxy M87 in 2019 and Sagittarius A* in 2022; the "
             "dark centre is the black hole's shadow."),
        ],
    },
    "bash": {
        "exchanges": [
            ("How do I find all files larger than 100 MB in my home directory?",
             "Use `find`:\n\n```bash\nfind ~ -type f -size +100M -exec ls -lh {} + 2>/dev/null | sort -k5 -h\n```\n\n"
             "`-size +100M` matches files over 100 MiB, `ls -lh` shows readable sizes, `2>/dev/null` hides permission "
             "errors, and `sort -k5 -h` orders by the size column. If you only want the paths, drop the `-exec` part."),
            ("What does `set -euo pipefail` do at the top of a script?",
             "`-e` exits the script when a command fails, `-u` treats use of an unset variable as an error, and "
             "`-o pipefail` makes a pipeline fail if any command in it fails, not just the last. Together they turn "
             "silent errors into early, visible failures. Be aware of the exceptions: commands in `if` conditions or "
             "followed by `||` do not trigger `-e`, which is usually what you want."),
            ("How can I rename all .jpeg files in a folder to .jpg?",
             "In bash:\n\n```bash\nfor f in *.jpeg; do\n  mv -- \"$f\" \"${f%.jpeg}.jpg\"\ndone\n```\n\n`${f%.jpeg}` "
             "removes the suffix, the quotes protect names with spaces, and `--` protects names that start with a "
             "dash. Run it once with `echo mv ...` first to check what it would do."),
        ],
        "followups": [
            ("And how would I do the same recursively in subfolders?",
             "Use `find` with a small shell: `find . -type f -name '*.jpeg' -exec sh -c 'mv -- \"$1\" \"${1%.jpeg}.jpg\"' "
             "_ {} \\;`. Each file is passed as `$1` to its own `sh -c`, so spaces in names are safe."),
        ],
    },
    "nutrition": {
        "exchanges": [
            ("How much protein do I need per day?",
             "For most adults the reference intake is about 0.8 g per kilogram of body weight, so around 56 g for a "
             "70 kg person. People who do regular strength training, older adults and those recovering from illness "
             "often benefit from more, in the range of 1.2-1.6 g per kilogram. Spreading it across meals, with 20-40 g "
             "at each, seems to help muscle maintenance more than eating it all at once."),
            ("Are eggs bad for cholesterol?",
             "For most people, eating eggs has only a modest effect on blood cholesterol, because the body adjusts "
             "its own production when dietary cholesterol rises. Saturated and trans fats have a larger effect. "
             "Studies generally find that up to one egg a day is not linked to higher heart disease risk in healthy "
             "people. People with diabetes or familial hypercholesterolaemia should follow their doctor's advice."),
        ],
        "followups": [
            ("What are some vegetarian protein sources?",
             "Lentils, chickpeas and beans, tofu and tempeh, Greek yogurt, eggs, cottage cheese, edamame, seitan, and "
             "nuts and seeds. Combining legumes with grains over the day gives a complete set of amino acids."),
        ],
    },
    "writing_story": {
        "exchanges": [
            ("Write the opening paragraph of a mystery set in a lighthouse.",
             "The lamp had turned every night for ninety-one years, and on the night it stopped, nobody on the island "
             "noticed until the ferry ran aground. By morning the fog had lifted enough to show the tower standing "
             "white against the cliffs, its door bolted from the inside, its keeper gone. On the table in the lamp "
             "room, beside a cold cup of tea, lay the logbook, open to a page on which someone had written the same "
             "date three times, each in a different hand."),
            ("Give me three ideas for a short story about time travel that avoid the usual paradoxes.",
             "1. A woman can travel back only to moments she has already lived, and only as an observer; she returns "
             "to her childhood kitchen to finally understand an argument she overheard.\n2. Time travel exists but "
             "every trip costs the traveller the same amount of their own future; a retired engineer spends years of "
             "his remaining life to attend one lecture in 1905.\n3. A small town receives one letter a year from its "
             "own future, always in the mayor's handwriting and always too vague to be useful, until the year it is "
             "blank."),
        ],
        "followups": [
            ("Continue the lighthouse story with the detective's arrival.",
             "Inspector Aileen Moray came over on the afternoon boat, the only passenger among crates of tinned "
             "food and diesel. The harbourmaster met her with a lantern he did not need and the look of a man who "
             "had already decided what had happened. \"He went into the sea,\" he said. \"They always do, in the end.\" "
             "Moray looked up at the tower. \"Then who bolted the door?\""),
        ],
    },
    "networking": {
        "exchanges": [
            ("What happens when I type a URL into my browser and press enter?",
             "Roughly: the browser parses the URL and checks its cache. If it needs the server, it resolves the "
             "hostname to an IP address through DNS, first from local caches, then from a resolver. It opens a TCP "
             "connection to that address, usually on port 443, and performs a TLS handshake to set up encryption and "
             "check the server's certificate. It then sends an HTTP request such as `GET /index.html`. The server "
             "replies with a status code, headers and the HTML. The browser parses the HTML, requests further "
             "resources such as CSS, JavaScript and images, builds the page layout and paints it on the screen. With "
             "HTTP/2 or HTTP/3, many of those requests share one connection."),
            ("What's the difference between TCP and UDP?",
             "TCP provides a reliable, ordered byte stream: it sets up a connection, numbers the data, retransmits "
             "lost packets and controls congestion. UDP just sends independent datagrams with no delivery guarantee, "
             "no ordering and no connection setup. UDP has less overhead and latency, which suits games, voice and "
             "video calls, and DNS lookups, where a late packet is useless anyway. QUIC, used by HTTP/3, builds "
             "reliable streams on top of UDP to avoid some of TCP's delays."),
        ],
        "followups": [
            ("Why does DNS sometimes take so long?",
             "If nothing is cached, the resolver may have to ask the root servers, then the top-level domain servers, "
             "then the domain's own name servers, each a network round trip. Slow or distant resolvers, packet loss "
             "with retries, and short cache lifetimes make it worse."),
        ],
    },
    "parenting": {
        "exchanges": [
            ("My four-year-old has tantrums every evening before bed. Any advice?",
             "Evening tantrums are often about tiredness and transitions. A predictable routine helps a lot: the same "
             "steps in the same order each night, such as bath, pyjamas, teeth, two books, lights out. Give a warning "
             "before each change (\"after this page it's time for teeth\"), and offer small choices inside the routine, "
             "like which pyjamas or which book, so your child has some control. Consider moving bedtime earlier; an "
             "overtired child often struggles more. During a tantrum, stay calm and close, keep words few, and talk "
             "about it later when everyone is calm."),
        ],
        "followups": [
            ("How long until a new routine starts working?",
             "Many families see an improvement within one to two weeks of doing it consistently. Expect some testing "
             "in the first days; it usually fades once your child sees the routine does not change."),
        ],
    },
    "rust_ownership": {
        "exchanges": [
            ("Why does Rust complain 'borrow of moved value' here?\n\n```rust\nlet s = String::from(\"hi\");\n"
             "let t = s;\nprintln!(\"{}\", s);\n```",
             "Assigning `s` to `t` moves the `String`: ownership of its heap buffer passes to `t`, and `s` can no "
             "longer be used. Rust does this so that exactly one variable is responsible for freeing the memory. If "
             "you need both, clone it, `let t = s.clone();`, or borrow it, `let t = &s;`, which lets `t` read the "
             "string while `s` keeps ownership. Types that are `Copy`, such as integers, are copied instead of moved."),
            ("When should I use Box, Rc and Arc?",
             "`Box<T>` puts a value on the heap with a single owner, useful for recursive types or large values. "
             "`Rc<T>` allows several owners of the same value within one thread, using a reference count. `Arc<T>` "
             "is the thread-safe version with an atomic count, for sharing across threads. To mutate shared data, "
             "combine them with interior mutability: `Rc<RefCell<T>>` in one thread, `Arc<Mutex<T>>` across threads."),
        ],
        "followups": [
            ("Is cloning expensive?",
             "For a `String` or `Vec`, `clone` allocates and copies the whole buffer, so it costs time proportional to "
             "the size. Cloning an `Rc` or `Arc` only increments a counter and is cheap."),
        ],
    },
    "cooking_weeknight": {
        "exchanges": [
            ("Give me a quick vegetarian dinner I can make in 20 minutes.",
             "Try a chickpea and spinach curry. Fry a chopped onion in oil for five minutes, add two cloves of garlic, "
             "a thumb of grated ginger and two tablespoons of curry paste, and cook for a minute. Stir in a drained tin "
             "of chickpeas and a tin of chopped tomatoes, simmer for ten minutes, then stir in two big handfuls of "
             "spinach until wilted. Finish with a squeeze of lime and a spoonful of yogurt. Serve with rice or "
             "flatbread. Serves two."),
            ("How do I cook rice so it isn't sticky?",
             "Rinse the rice in a sieve until the water runs almost clear, which removes surface starch. Use about 1.5 "
             "parts water to 1 part long-grain rice by volume, bring to the boil, then cover and cook on the lowest "
             "heat for 12 minutes without lifting the lid. Take it off the heat and let it steam, still covered, for "
             "10 minutes, then fluff it with a fork."),
            ("What can I substitute for buttermilk?",
             "Stir one tablespoon of lemon juice or white vinegar into a cup of milk and let it stand for five to ten "
             "minutes until it thickens slightly. Plain yogurt or kefir thinned with a little milk also works well in "
             "pancakes and baking."),
        ],
        "followups": [
            ("Can I make it without curry paste?",
             "Yes: use a teaspoon each of ground cumin, coriander and garam masala, half a teaspoon of turmeric and a "
             "pinch of chilli, fried briefly with the garlic and ginger."),
        ],
    },
    "statistics": {
        "exchanges": [
            ("What does a p-value actually tell me?",
             "A p-value is the probability of seeing data at least as extreme as yours if the null hypothesis were "
             "true. A small p-value means your data would be surprising under the null. It does not give the "
             "probability that the null hypothesis is true, and it says nothing about how large or important the "
             "effect is. A tiny effect can have a small p-value with enough data, so always report an effect size and "
             "a confidence interval alongside it."),
            ("When should I use the median instead of the mean?",
             "Use the median when the data are skewed or have outliers, such as incomes, house prices or response "
             "times, because a few extreme values pull the mean strongly while the median stays put. The mean is "
             "preferable for roughly symmetric data and when you need totals, since mean times count gives the sum."),
            ("What's the difference between correlation and causation?",
             "Correlation means two variables move together; causation means changing one produces a change in the "
             "other. Correlation can arise without causation through a confounder that drives both (ice cream sales "
             "and drownings both rise in summer), through reverse causation, or by chance when many pairs are tested. "
             "Randomised experiments are the most direct way to establish causation; with observational data you need "
             "careful designs and assumptions."),
        ],
        "followups": [
            ("Can you give an example with numbers?",
             "Suppose a drug lowers blood pressure by 1 mmHg on average in a trial with 50,000 people. The p-value "
             "might be 0.0001, highly significant, yet a 1 mmHg change is clinically negligible."),
        ],
    },
    "job_interview": {
        "exchanges": [
            ("How should I answer 'What is your greatest weakness?' in an interview?",
             "Choose a real weakness that does not undermine the core of the job, and show what you are doing about "
             "it. For example: \"I used to find it hard to delegate, so I'd end up working late on things the team "
             "could have shared. In my last role I started breaking projects into tasks at the kickoff and assigning "
             "them openly, and our deadlines became more predictable.\" Avoid disguised strengths like \"I'm a "
             "perfectionist\"; interviewers hear it constantly."),
            ("What questions should I ask at the end of an interview?",
             "Ask questions that help you decide and show you have thought about the role: What does success look "
             "like in the first six months? What are the biggest challenges the team faces right now? How does the "
             "team make decisions and handle disagreements? What do you enjoy about working here? Avoid asking about "
             "things you could easily look up on the company website."),
        ],
        "followups": [
            ("Should I send a thank-you email afterwards?",
             "Yes, a brief one within a day is a good habit: thank them for their time, mention one specific point "
             "from the conversation, and restate your interest in the role."),
        ],
    },
    "physics_everyday": {
        "exchanges": [
            ("Why is the sky blue?",
             "Sunlight contains all colours. As it passes through the atmosphere, it scatters off gas molecules, and "
             "this Rayleigh scattering is much stronger for short wavelengths: blue light scatters about five times "
             "more than red. So blue light reaches your eyes from all directions across the sky. At sunset the light "
             "travels through much more air, most of the blue is scattered out along the way, and the remaining "
             "light looks orange and red."),
            ("Why does ice float?",
             "Water is unusual: when it freezes, its molecules arrange themselves into a hexagonal crystal held "
             "together by hydrogen bonds, which holds them further apart than in the liquid. Ice is therefore about 9% "
             "less dense than liquid water, so it floats. This matters for life: lakes freeze from the top down, and "
             "the ice layer insulates the water below."),
            ("How does a microwave oven heat food?",
             "It produces microwaves at about 2.45 GHz. Their oscillating electric field makes polar molecules, mainly "
             "water, keep trying to align with it, and that jostling is passed on as heat. The waves penetrate a few "
             "centimetres, so thick food heats from the outside in by conduction, which is why stirring or resting "
             "helps even out cold spots."),
        ],
        "followups": [
            ("Then why are sunsets sometimes purple?",
             "After the Sun has set, the sky overhead can still be lit by blue scattered light while the horizon glows "
             "red; the mix, helped by fine particles high in the atmosphere, looks purple or pink."),
        ],
    },
    "project_management": {
        "exchanges": [
            ("Our team keeps missing sprint deadlines. Where should we start?",
             "Start by measuring instead of guessing. Look at the last few sprints: how much was planned, how much was "
             "finished, and what was added mid-sprint. Common causes are planning to 100% of capacity with no slack, "
             "tasks that are too big to estimate, and unplanned work such as support requests. Practical fixes are to "
             "plan to your actual recent throughput, split work into pieces of a day or two, and reserve explicit "
             "capacity for interruptions. Review it in the retrospective and adjust after two or three sprints."),
            ("How do I write a good project status update?",
             "Lead with the overall status in one line (on track, at risk, or off track) and why. Then list progress "
             "since the last update, what comes next, and risks or decisions you need from the reader, with owners "
             "and dates. Keep it short enough to read in a minute, and link to details rather than pasting them."),
        ],
        "followups": [
            ("Can you draft one for a website redesign that's slightly behind?",
             "Status: at risk. Design is complete, but development is about one week behind because the content "
             "migration took longer than planned.\nDone: final designs approved; homepage and product pages built.\n"
             "Next: blog templates and search, then user testing on the 18th.\nRisks: launch date of the 30th depends "
             "on receiving the legal copy by Friday; decision needed on whether to launch without the store locator."),
        ],
    },
    "chess": {
        "exchanges": [
            ("I'm a beginner at chess. What opening principles should I follow?",
             "Control the centre with your pawns and pieces, develop your knights and bishops quickly, castle early to "
             "protect your king, and avoid moving the same piece twice in the opening without a good reason. Don't "
             "bring your queen out too early, where it can be chased around while your opponent develops. Following "
             "these ideas matters more at first than memorising specific lines."),
            ("What is a fork?",
             "A fork is a move where one piece attacks two or more enemy pieces at once, so your opponent can save only "
             "one. Knights are famous for forks because their L-shaped move is easy to overlook, such as a knight "
             "check that also attacks the queen. Pawns, queens and even kings can fork too."),
        ],
        "followups": [
            ("How should I practise tactics?",
             "Solve a few puzzles every day on a site like Lichess, focusing on accuracy rather than speed, and review "
             "your own games to find the tactics you missed."),
        ],
    },
    "docker": {
        "exchanges": [
            ("What's the difference between a Docker image and a container?",
             "An image is a read-only template: a filesystem snapshot plus metadata such as the default command. A "
             "container is a running, or stopped, instance of an image, with its own writable layer, process space and "
             "network settings. You can start many containers from one image. If you change files inside a container, "
             "the image is unaffected; to keep changes you build a new image, usually from a Dockerfile."),
            ("My Docker image is 2 GB. How can I make it smaller?",
             "Start from a slimmer base image, such as a `-slim` or distroless variant. Use a multi-stage build: "
             "compile in a full build image and copy only the resulting binary or package into a minimal runtime "
             "image. Combine package installation and cleanup into one `RUN` step and remove caches, for example "
             "`apt-get install --no-install-recommends ... && rm -rf /var/lib/apt/lists/*`. Add a `.dockerignore` so "
             "that build context junk such as `.git` and `node_modules` is not copied in."),
        ],
        "followups": [
            ("Can you show a minimal multi-stage Dockerfile for a Go program?",
             "```dockerfile\nFROM golang:1.22 AS build\nWORKDIR /src\nCOPY . .\nRUN CGO_ENABLED=0 go build -o /app .\n\n"
             "FROM gcr.io/distroless/static\nCOPY --from=build /app /app\nENTRYPOINT [\"/app\"]\n```\n\nThe final "
             "image contains only the static binary, usually a few megabytes."),
        ],
    },
    "sleep": {
        "exchanges": [
            ("I wake up at 3 a.m. most nights and can't fall back asleep. What can I try?",
             "Keep your wake-up time the same every day, including weekends, since a regular schedule stabilises your "
             "body clock. Limit caffeine after noon and alcohol in the evening; alcohol in particular fragments sleep "
             "in the second half of the night. If you are awake for more than about 20 minutes, get up and do "
             "something quiet in dim light until you feel sleepy, rather than lying in bed worrying. Avoid checking "
             "the time. If this continues for more than a few weeks, talk to a doctor; cognitive behavioural therapy "
             "for insomnia is very effective."),
        ],
        "followups": [
            ("Does reading on my phone before bed really matter?",
             "Bright screens late at night can delay sleepiness a little, but the content often matters more than the "
             "light: messages and news keep the mind active. A dimmed screen with something calm is less of a problem "
             "than scrolling."),
        ],
    },
    "economics": {
        "exchanges": [
            ("What causes inflation?",
             "Inflation is a general rise in prices. It can come from demand growing faster than the economy can "
             "produce, for example when spending is boosted by low interest rates or government stimulus; from supply "
             "shocks that raise costs, such as an energy price spike; and from expectations, when firms and workers "
             "expect prices to rise and set wages and prices accordingly. Over long periods, sustained high inflation "
             "is associated with money supply growing much faster than output."),
            ("Why do central banks raise interest rates to fight inflation?",
             "Higher rates make borrowing more expensive and saving more attractive, so households and firms spend "
             "and invest less. Lower demand eases pressure on prices and on the labour market. Higher rates also "
             "tend to strengthen the currency, making imports cheaper. The effect works with a lag, often a year or "
             "more, which is why central banks try to act before inflation is fully visible."),
        ],
        "followups": [
            ("Is a little inflation good?",
             "Most central banks target around 2%. Mild inflation gives room to cut real interest rates in downturns "
             "and makes it easier for relative wages to adjust, while deflation can make people delay spending and "
             "increases the real burden of debt."),
        ],
    },
    "javascript_async": {
        "exchanges": [
            ("Why does this log 'undefined'?\n\n```js\nfunction getUser() {\n  fetch('/api/user').then(r => r.json());\n}\n"
             "console.log(getUser());\n```",
             "`getUser` doesn't return anything, so it returns `undefined`. Even if you returned the promise, "
             "`console.log` would print a pending Promise, because the request finishes later. Return the promise and "
             "wait for it:\n\n```js\nasync function getUser() {\n  const r = await fetch('/api/user');\n  return r.json();\n}\n\n"
             "getUser().then(user => console.log(user));\n```\n\nInside another `async` function you can write "
             "`const user = await getUser();`."),
            ("How do I run several fetches in parallel and wait for all of them?",
             "Start them all, then await `Promise.all`:\n\n```js\nconst [a, b, c] = await Promise.all([\n  fetch(urlA).then(r => r.json()),\n"
             "  fetch(urlB).then(r => r.json()),\n  fetch(urlC).then(r => r.json()),\n]);\n```\n\n`Promise.all` rejects as "
             "soon as any request fails. If you want every result regardless of failures, use `Promise.allSettled`, "
             "which gives you an array of `{status, value}` or `{status, reason}` objects."),
        ],
        "followups": [
            ("How would I add a timeout to each request?",
             "Pass an abort signal: `fetch(url, { signal: AbortSignal.timeout(5000) })` aborts the request after five "
             "seconds and the promise rejects with a `TimeoutError`."),
        ],
    },
    "gardening": {
        "exchanges": [
            ("When should I plant tomatoes outside?",
             "Wait until all danger of frost has passed and night temperatures stay above about 10 °C; in much of "
             "northern Europe and the northern US that is mid to late May. Tomatoes planted into cold soil just sit "
             "and sulk. Harden seedlings off first by putting them outside for a few hours a day over a week, "
             "increasing the time gradually."),
            ("How often should I water vegetables in summer?",
             "Water deeply and less often rather than a little every day: a thorough soak two or three times a week "
             "encourages deep roots. Check by pushing a finger into the soil; if it is dry a few centimetres down, "
             "water. Water in the morning at the base of the plants, and mulch the soil to keep moisture in. "
             "Containers dry out much faster and may need water daily in hot weather."),
        ],
        "followups": [
            ("My tomato leaves have brown spots with rings. What is it?",
             "Brown spots with concentric rings on the lower leaves are typical of early blight, a fungal disease. "
             "Remove affected leaves, avoid wetting the foliage, mulch to stop soil splashing up, and rotate where "
             "you grow tomatoes next year."),
        ],
    },
    "math_word_problems": {
        "exchanges": [
            ("A train leaves at 9:40 and arrives at 13:15. How long is the journey?",
             "From 9:40 to 12:40 is 3 hours, and from 12:40 to 13:15 is 35 minutes, so the journey takes 3 hours and "
             "35 minutes."),
            ("If 3 workers paint a fence in 8 hours, how long would 4 workers take?",
             "The job takes 3 x 8 = 24 worker-hours. With 4 workers: 24 / 4 = 6 hours, assuming they all work at the "
             "same rate and don't get in each other's way."),
            ("A shirt costs $40 after a 20% discount. What was the original price?",
             "After a 20% discount you pay 80% of the original price. So 0.8 x original = 40, and original = 40 / 0.8 "
             "= $50. A common mistake is to add 20% of $40 back, which gives $48; the discount was 20% of the "
             "original price, not of the sale price."),
        ],
        "followups": [
            ("Can you explain why that common mistake happens?",
             "Percentages are always relative to a base. The discount's base is the original price, so undoing it "
             "means dividing by 0.8; adding 20% uses the smaller sale price as the base, which gives too little."),
        ],
    },
    "philosophy": {
        "exchanges": [
            ("What is the trolley problem supposed to show?",
             "It is a thought experiment that tests our intuitions about harming versus allowing harm. A runaway "
             "trolley will kill five people unless you pull a lever to divert it onto a track where it kills one. "
             "Many people say pulling the lever is acceptable. But in a variation where you could stop the trolley "
             "only by pushing a large man off a bridge into its path, most people say no, even though the numbers "
             "are the same. The contrast is used to explore principles such as the doctrine of double effect and the "
             "difference between using someone as a means and causing harm as a side effect."),
            ("What did the Stoics believe?",
             "The Stoics, from Zeno to Seneca, Epictetus and Marcus Aurelius, held that virtue is the only true good "
             "and that a good life means living in agreement with reason and nature. A central practice is "
             "distinguishing what is in our control, our judgements, intentions and actions, from what is not, such "
             "as reputation, wealth and other people's behaviour, and focusing our effort on the former. Emotions like "
             "anger and fear, they argued, come from mistaken judgements that we can learn to examine and change."),
        ],
        "followups": [
            ("Which Stoic book should I read first?",
             "Many people start with Epictetus's Enchiridion, which is short and practical, or Marcus Aurelius's "
             "Meditations in a modern translation such as Gregory Hays's."),
        ],
    },
    "data_structures": {
        "exchanges": [
            ("When should I use a hash map instead of a sorted array?",
             "Use a hash map when you mainly need fast lookups, inserts and deletes by key; these take constant time "
             "on average. Use a sorted array when the data rarely changes and you need ordered operations: range "
             "queries, the next larger key, or iteration in order. Binary search gives logarithmic lookups, and the "
             "array is compact and cache-friendly. Inserting into a sorted array costs linear time because elements "
             "must shift."),
            ("Explain how a binary heap works.",
             "A binary heap is a complete binary tree stored in an array, where every parent is smaller than or equal "
             "to its children in a min-heap, so the minimum is at the root, index 0. The children of index i are at "
             "2i+1 and 2i+2. To insert, append the value at the end and swap it upwards while it is smaller than its "
             "parent. To remove the minimum, move the last element to the root and swap it downwards with its smaller "
             "child until the order holds. Both take O(log n) time, which makes heaps the usual priority queue."),
        ],
        "followups": [
            ("What's a real use of a priority queue?",
             "Dijkstra's shortest path algorithm keeps unvisited nodes in a priority queue keyed by their current "
             "distance, always expanding the closest one next. Operating system schedulers and event simulations use "
             "them too."),
        ],
    },
    "mental_health": {
        "exchanges": [
            ("I feel overwhelmed by my to-do list. How do I get started?",
             "Write everything down first, so it stops circling in your head. Then pick just one small task you can "
             "finish in about ten minutes and do it; momentum helps. For the rest, mark what truly has to happen today "
             "and what can wait, and accept that some things will not get done this week. Breaking big items into "
             "concrete next steps, like \"email Sara for the figures\" instead of \"do report\", makes them much easier "
             "to start. If the overwhelm persists or affects your sleep and mood, it is worth talking to someone, such "
             "as a friend, your doctor or a counsellor."),
        ],
        "followups": [
            ("What if everything feels urgent?",
             "Ask what happens if each task waits a day. Usually only a few have real consequences; those go first. "
             "If several truly collide, tell the people involved early and agree on priorities together."),
        ],
    },
    "hardware_gpu": {
        "exchanges": [
            ("Why are GPUs faster than CPUs for deep learning?",
             "Deep learning is dominated by large matrix multiplications, which consist of many independent "
             "multiply-add operations. A GPU has thousands of simple cores and specialised tensor units that perform "
             "these in parallel, plus very high memory bandwidth, over 3 TB/s on an H100. A CPU has a few dozen "
             "powerful cores optimised for low-latency, branchy serial code. For the highly regular arithmetic of "
             "neural networks, the GPU's throughput-oriented design wins by one or two orders of magnitude."),
            ("What does 'memory-bound' mean for a GPU kernel?",
             "A kernel is memory-bound when its speed is limited by how fast data can be moved to and from memory, "
             "not by arithmetic. You can tell from its arithmetic intensity, the number of floating-point operations "
             "per byte moved. Element-wise operations like adding two tensors do one operation per several bytes, far "
             "below what the GPU's compute units could handle, so they are memory-bound. Large matrix multiplications "
             "reuse each loaded value many times and are compute-bound. Fusing several memory-bound operations into "
             "one kernel, as FlashAttention does for attention, reduces memory traffic and often gives big speedups."),
        ],
        "followups": [
            ("How does FlashAttention avoid the memory traffic?",
             "It processes attention in tiles that fit in on-chip shared memory, computing the softmax incrementally "
             "with running maxima and sums, so the full T x T score matrix is never written to GPU memory."),
        ],
    },
}

# Ways users open or continue a conversation, so repeated exchanges read differently.
OPENERS = ["", "", "", "Hi! ", "Hello. ", "Quick question: ", "I have a question. ", "Hey, "]
CONTINUERS = ["", "", "Thanks. ", "Great, thank you. ", "That helps. ", "OK. ", "Got it. "]


def build_conversation(rng, topic_name, topic, index):
    exchanges = topic["exchanges"]
    n_turns = rng.choice([1, 1, 2, 2, 2, 3, 3, 4, 5])
    picked = []
    order = list(range(len(exchanges)))
    rng.shuffle(order)
    for k in order[: min(n_turns, len(exchanges))]:
        picked.append(exchanges[k])
    if n_turns > len(picked):
        picked.extend(rng.sample(topic["followups"], min(n_turns - len(picked), len(topic["followups"]))))
    messages = []
    if rng.random() < 0.35:
        messages.append({"role": "system", "content": rng.choice(system_prompts_for(topic_name))})
    for i, (user, assistant) in enumerate(picked):
        prefix = rng.choice(OPENERS) if i == 0 else rng.choice(CONTINUERS)
        messages.append({"role": "user", "content": prefix + user})
        messages.append({"role": "assistant", "content": assistant})
    return {"dataset": "attnbench_sample", "id": f"attnbench_sample_{index:04d}_{topic_name}", "messages": messages}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="data/sample/tulu_sample.jsonl")
    ap.add_argument("--count", type=int, default=320)
    ap.add_argument("--seed", type=int, default=20240520)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    names = sorted(TOPICS)
    seen = set()
    rows = []
    attempts = 0
    while len(rows) < args.count and attempts < args.count * 50:
        attempts += 1
        name = names[len(rows) % len(names)] if rng.random() < 0.7 else rng.choice(names)
        conv = build_conversation(rng, name, TOPICS[name], len(rows))
        key = json.dumps(conv["messages"], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        rows.append(conv)
    with open(args.out, "w", encoding="utf-8") as f:
        for conv in rows:
            f.write(json.dumps(conv, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} conversations to {args.out}")


if __name__ == "__main__":
    main()
