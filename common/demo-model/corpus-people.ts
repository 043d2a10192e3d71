/**
 * Part of the demo model's built-in text: topics about things people make
 * (networks, cooking, history) and the model's small talk about itself.
 * Format: see corpus.ts. Written for this project.
 */

/** Machines talking to each other. */
export const NETWORKS = `
A computer network is a group of machines that agree on how to pass messages to one another. Each
message is cut into small packets, and every packet carries the address of the machine it is meant for.
The packets travel through copper, radio and glass fibre, and they do not always take the same road.
When a link is busy or broken, the next packet simply goes another way.

A router is a small computer whose only job is to forward packets. It reads the address on each packet,
looks it up in a table, and sends the packet one hop closer to its goal. No router knows the whole map
of the internet. Each one knows its neighbours and trusts them to carry the packet a little further,
and that is enough.

Latency is the time a message needs to cross the network, and bandwidth is how much data can flow at
once. A fast link with long latency still feels slow for small requests, because every question must
wait for its answer. This is why programs send many small messages together, and why a server close to
its users feels quicker than a large one far away.

A firewall stands at the edge of a network and decides which connections may pass. Many machines sit
behind one, with no public address of their own. They can still reach the outside world by dialling
out, because the firewall remembers each outgoing connection and lets the answers come back in. A
tunnel built this way stays open for as long as both ends keep talking.

When two programs talk over a network they need a protocol, a shared set of rules about who speaks
first, what each message means and what to do when something goes wrong. A good protocol is written down
so carefully that a stranger could build a new program from the text alone, and it would still
understand the old ones.

Q: What does a router do?
A: A router reads the address on each packet and sends it one hop closer to where it is going. It does
not need to know the whole network, only its neighbours.

Q: What is latency?
A: Latency is the time a message needs to travel from one machine to another. It matters most for small
requests, where waiting is most of the work.

Q: Why do machines behind a firewall dial out?
A: A machine with no public address cannot be reached from outside, but it can open a connection
outward. The firewall then lets the answers come back through that connection.

Q: What is the difference between latency and bandwidth?
A: Latency is how long one message takes to arrive, and bandwidth is how much data can flow at the same
time. A wide road can still be a long road.

Q: What is a packet?
A: A packet is a small piece of a larger message, with the address of its destination written at the
front. The pieces are put back together when they arrive.

Q: Tell me about routers and packets.
A: A message is cut into packets, and each packet carries an address. Routers read that address and pass
the packet along, one hop at a time, until it reaches the right machine.

Q: What is a protocol?
A: A protocol is a shared set of rules that two programs follow when they talk over a network. It says
who speaks first and what each message means.
`;

/** The kitchen. */
export const COOKING = `
Good cooking begins with a hot pan and a little patience. Onions softened slowly in butter turn sweet
and golden, while onions burned in a hurry turn bitter. Most simple dishes ask for only a few things:
fresh ingredients, enough salt, and the sense to stop stirring and let the heat do its work.

Bread is made from flour, water, salt and yeast. The yeast eats the sugar in the flour and breathes out
gas, and the gas fills the dough with small bubbles. Kneading makes the dough strong and elastic, so it
can hold those bubbles as it rises. A slow rise in a cool kitchen gives the bread more flavour than a
fast one in a warm room.

Soup is the most forgiving dish in the kitchen. Start with an onion, a carrot and a stick of celery, add
whatever vegetables are waiting in the basket, cover them with water or stock and let the pot simmer.
Taste it before you serve it, and add salt or a squeeze of lemon until it tastes like more.

Rice wants to be measured. For plain white rice, one cup of grain needs about one and a half cups of
water. Rinse the grain first, bring the water to a boil, then cover the pot and turn the heat down low.
Leave the lid alone for a while, because the steam is doing the cooking.

Q: How do I make bread?
A: Mix flour, water, salt and yeast into a dough, knead it until it is smooth, and let it rise. Shape it,
let it rise again, and bake it in a hot oven until the crust is brown.

Q: Tell me about bread.
A: Bread is flour, water, salt and yeast, mixed into a dough and baked. The yeast fills the dough with
small bubbles, which is why a good loaf is light inside.

Q: Why does my bread not rise?
A: The yeast may be old, or the kitchen may be too cold. Give the dough more time in a warm place, and
check that the yeast still makes bubbles in warm water.

Q: How much water does rice need?
A: For plain white rice, use about one and a half cups of water for each cup of grain. Cover the pot and
cook it on low heat until the water is gone.

Q: What should I cook for dinner?
A: A simple soup is hard to get wrong. Soften an onion, add vegetables and stock, and let the pot simmer
while you set the table.

Q: How do I stop onions from burning?
A: Cook them slowly over low heat with a little butter or oil, and stir them now and then. Golden onions
need patience more than heat.
`;

/** The past. */
export const HISTORY = `
History is the study of what people did and why, pieced together from letters, tools, ruins and
stories. The past does not speak for itself. Every historian must decide which sources to trust, and two
careful people can read the same old letter and come away with different ideas.

Long before there were roads of stone, there were roads of trade. Merchants carried salt, silk, spices
and metal across deserts and mountains, and with their goods they carried words, songs, recipes and
ideas. Many cities grew up where two trade routes crossed, at a river ford or a safe harbour.

Writing began as a way of keeping accounts. Early clerks pressed marks into wet clay to record how much
grain was stored and who owed what to whom. Only later did people use the same marks to write down laws,
prayers, letters and stories, and so the first libraries were born.

The printing press changed Europe in a single lifetime. Books that once took a scribe a year to copy
could be printed in a few weeks, and their price fell. More people learned to read, news travelled
faster, and arguments that had stayed inside a few monasteries spread through whole countries.

Q: Why did cities grow near rivers?
A: Rivers gave people water for drinking and farming, and a road for boats. Many cities grew where a
river could be crossed or where goods changed hands.

Q: How did writing begin?
A: Writing began as a way of keeping accounts, with marks pressed into clay to record grain and debts.
Laws, letters and stories came later.

Q: Why was the printing press important?
A: It made books cheaper and faster to produce. More people learned to read, and ideas spread across
whole countries in a few years.

Q: What is a primary source?
A: A primary source is something made at the time you are studying, such as a letter, a map or a tool. A
book written later about that time is a secondary source.

Q: Tell me about ancient history.
A: Ancient history is the story of the first cities, the first writing and the first long roads of trade.
Most of what we know about it comes from ruins, tools and clay tablets.

Q: What was traded on the old trade routes?
A: Merchants carried salt, silk, spices and metal, and with them went words, recipes and ideas.
`;

/** What the model says about itself. */
export const SMALL_TALK = `
This is the TensorClaw demo model. It is a tiny statistical model of a few pages of English text, built
from counts of which word pieces follow which. It knows nothing of the world beyond those pages, but its
probabilities are real, so every answer it gives can be checked one token at a time.

A good answer is short, clear and honest about what it does not know. When a question cannot be
answered, it is better to say so than to guess.

Q: Hello!
A: Hello! I am the TensorClaw demo model. Ask me a question, and I will answer with a sentence or two.

Q: Who are you?
A: I am the TensorClaw demo model, a tiny model of a few pages of text. I am not a real assistant, but my
answers are real samples from my own probabilities.

Q: What can you do?
A: I can write short pieces of text about networks, weather, cooking, history, gardens, the sea and the
stars. My answers can be checked, because every word I choose has a probability.

Q: Thank you.
A: You are welcome.

Q: Tell me a story.
A: Once there was a sailor who kept a small garden on the deck of her boat. Every evening she watched the
stars, and every morning she watched the weather.

Q: What is two plus two?
A: Two plus two is four.

S: You are a helpful assistant.
Q: Can you help me?
A: I will try. I am only a tiny demo model, so my answers are short and simple.

Q: Hi.
A: Hello! What would you like to talk about?

Q: Who made you?
A: I was written for TensorClaw as a small example. I learned everything I know from a few pages of text.
`;
