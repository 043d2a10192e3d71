/**
 * Part of the demo model's built-in text: topics about the natural world
 * (weather, gardens, the sea, the night sky). Format: see corpus.ts. Written
 * for this project.
 */

/** The air. */
export const WEATHER = `
Weather is the state of the air over one place at one moment: how warm it is, how wet, how fast the wind
blows and where the clouds are. Climate is the long story told by many years of weather. A single cold
week says little about the climate, but a hundred warm summers in a row say a great deal.

Clouds form when warm, moist air rises and cools. Cool air cannot hold as much water, so the water
gathers into tiny drops around specks of dust and salt. When the drops grow heavy enough they fall as
rain, and when the air near the ground is cold enough they fall as snow instead.

Wind is air moving from places of high pressure to places of low pressure. The sun warms the land faster
than the sea during the day, so on a summer afternoon a cool breeze often blows in from the water. At
night the land cools quickly and the breeze turns around.

Storms gather their energy from warm water and moist air. A thunderstorm can grow in a single afternoon,
tall and dark, with lightning flashing inside it. Farmers and sailors have always watched the sky for
signs of change: a ring around the moon, a sudden drop in pressure, the smell of rain on dry ground.

Q: Why does it rain?
A: Warm, moist air rises and cools, and the water in it gathers into drops. When the drops grow heavy
enough, they fall as rain.

Q: What is the difference between weather and climate?
A: Weather is what the air is doing today, and climate is the pattern of weather over many years. A cold
week is weather; a warming century is climate.

Q: Will it rain tomorrow?
A: I cannot see the sky from here, so I cannot tell you. A local forecast knows far more than a tiny demo
model does.

Q: Why is the sea breeze cool in summer?
A: The land warms faster than the water during the day. The warm air over the land rises, and cooler air
flows in from the sea to take its place.

Q: Tell me about the weather.
A: Weather is what the air is doing right now: its warmth, its wind, its clouds and its rain. It changes
from hour to hour, which is why forecasts are always a little uncertain.

Q: How does snow form?
A: Snow forms when the air is cold enough for water to freeze into small crystals instead of drops. The
crystals stick together into flakes as they fall.
`;

/** The garden. */
export const GARDENING = `
A garden is a slow conversation with the soil. Plants need light, water and food, but most of all they
need soil that can breathe. Good soil is dark and crumbly, full of roots, worms and rotting leaves, and
it holds water like a sponge without turning to mud.

Seeds are patient. A bean can wait in a paper packet for years and still wake up within a week once it
is pressed into warm, damp earth. Sow seeds at a depth of about twice their size, keep the ground moist,
and do not be surprised if the weeds come up first.

Tomatoes love the sun and hate cold feet. Plant them out only when the nights are warm, give them a
stake to climb, and water them deeply at the root rather than on the leaves. Pinch out the small shoots
that grow between the stem and the branches, and the plant will spend its strength on fruit.

Compost turns kitchen scraps and fallen leaves back into soil. Mix green things, such as peelings and
grass, with brown things, such as straw and dry leaves, and turn the heap now and then so air can reach
the middle. In a few months the heap will smell of the forest floor.

Q: How do I grow tomatoes?
A: Plant them in a sunny spot once the nights are warm, give them a stake to climb, and water them deeply
at the root. Pinch out the small side shoots so the plant makes more fruit.

Q: When should I water my garden?
A: Water early in the morning, when the air is cool and the leaves can dry in the sun. Deep watering once
or twice a week is better than a little every day.

Q: What is compost?
A: Compost is kitchen scraps and garden waste that have rotted into dark, crumbly soil. It feeds the
plants and helps the ground hold water.

Q: How deep should I plant seeds?
A: A good rule is about twice the size of the seed. Tiny seeds need only a light covering of soil.
`;

/** The sea and sailing. */
export const SEA = `
The sea covers most of the planet, and it is never still. Tides rise and fall twice a day as the moon
pulls on the water, and waves carry the energy of distant storms across whole oceans. A sailor learns
to read the water as a farmer reads the sky.

A sailing boat does not only run before the wind. With the sail trimmed well it can sail across the
wind and even at an angle towards it, because the sail works like a wing and the keel stops the boat
from sliding sideways. To reach a harbour straight upwind, the boat must turn back and forth in a long
zigzag.

Before there were satellites, sailors found their way with a compass, a clock and the stars. They
measured the height of the sun at noon to learn how far north or south they were, and they kept careful
notes of speed and direction to guess how far they had come. A small mistake could carry a ship far off
course.

Q: Why are there tides?
A: The moon pulls on the water of the oceans, and the earth turns beneath that pull. Most coasts see the
water rise and fall twice a day.

Q: How can a boat sail against the wind?
A: The sail works like a wing and the keel keeps the boat from sliding sideways. The boat cannot sail
straight into the wind, so it zigzags towards its goal.

Q: Tell me something about the sea.
A: The sea covers most of the planet, and it is never still. Its tides follow the moon, and its waves
carry the energy of storms far away.

Q: How did sailors navigate before satellites?
A: They used a compass, a clock and the stars, and kept careful notes of speed and direction. The height
of the sun at noon told them how far north or south they were.
`;

/** The night sky. */
export const STARS = `
On a clear night far from city lights, the sky is crowded with stars. Each one is a sun, many of them
larger than our own, so far away that their light has travelled for years to reach us. When you look at
the night sky, you are looking into the past.

The planets wander slowly against the fixed pattern of the stars, which is how ancient watchers told
them apart. The moon changes its shape through the month, not because anything eats it, but because we
see more or less of its sunlit side as it circles the earth.

A telescope gathers light the way a bucket gathers rain. The wider the opening, the fainter the things
it can show. Even a small pair of binoculars will reveal the craters of the moon, the moons of the
largest planet, and soft clouds of light where new stars are being born.

Q: Why does the moon change shape?
A: The moon does not change at all. As it circles the earth, we see more or less of the side that faces
the sun.

Q: What is a star?
A: A star is a huge ball of hot gas that makes its own light, like our sun. Most stars look small only
because they are very far away.

Q: Tell me about the stars.
A: Every star is a distant sun. Their light is so old that looking at the night sky is looking into the
past.

Q: Why is the sky dark at night?
A: At night our side of the earth faces away from the sun. The stars are still there, but their light is
faint and far away.
`;
