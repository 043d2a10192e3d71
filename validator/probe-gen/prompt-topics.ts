/*
 * What English probe prompts talk about: topics from everyday API traffic
 * (coding, study, work, health, money, travel, hobbies, science), each with
 * a field and a few terms a conversation about it naturally mentions.
 * Written as "topic | field | term; term; term" lines to keep the list
 * readable; parsed once into frozen records.
 */

/** One thing a conversation can be about. */
export interface Topic {
  readonly name: string;
  /** The broader field, for system prompts ("an expert in ..."). */
  readonly field: string;
  /** At least three related terms. */
  readonly terms: readonly string[];
}

const LINES = `
solar panels | renewable energy | inverters; panel efficiency; net metering; battery storage
heat pumps | home energy | the coefficient of performance; refrigerant; ground loops; defrost cycles
electric cars | transport | regenerative braking; charging curves; battery degradation; range anxiety
wind turbines | renewable energy | blade pitch; capacity factor; offshore foundations; grid balancing
nuclear fusion | physics | plasma confinement; tokamaks; the triple product; tritium breeding
black holes | astronomy | event horizons; Hawking radiation; accretion disks; gravitational waves
exoplanets | astronomy | the transit method; habitable zones; radial velocity; atmospheric spectra
the immune system | biology | antibodies; T cells; inflammation; vaccines
gut bacteria | health | the microbiome; fibre intake; probiotics; fermentation
sleep | health | REM cycles; circadian rhythm; melatonin; sleep debt
strength training | fitness | progressive overload; compound lifts; recovery days; protein intake
marathon training | fitness | long runs; tapering; pacing strategy; carb loading
intermittent fasting | nutrition | eating windows; insulin sensitivity; muscle loss; hunger hormones
sourdough baking | cooking | starter culture; hydration ratio; bulk fermentation; oven spring
Thai curry | cooking | coconut milk; curry paste; fish sauce; kaffir lime leaves
meal prep | cooking | batch cooking; food storage; portion sizes; freezer meals
coffee brewing | food and drink | grind size; extraction time; pour-over; espresso ratios
wine pairing | food and drink | tannins; acidity; regional pairings; dessert wines
houseplants | gardening | overwatering; indirect light; repotting; humidity
vegetable gardening | gardening | crop rotation; companion planting; compost; raised beds
composting | gardening | the carbon to nitrogen ratio; worm bins; hot composting; turning the pile
dog training | pets | positive reinforcement; leash pulling; recall; crate training
cat behaviour | pets | scratching; litter box habits; play aggression; territory
aquarium keeping | pets | the nitrogen cycle; water changes; stocking levels; filtration
personal budgeting | personal finance | the 50/30/20 rule; emergency funds; expense tracking; sinking funds
index funds | investing | expense ratios; diversification; dollar-cost averaging; rebalancing
mortgages | personal finance | fixed rates; amortisation; down payments; refinancing
credit scores | personal finance | credit utilisation; payment history; hard inquiries; credit age
retirement savings | investing | compound interest; employer matching; withdrawal rates; annuities
inflation | economics | interest rates; purchasing power; central banks; wage growth
supply chains | business | lead times; safety stock; just-in-time delivery; supplier risk
startup fundraising | business | seed rounds; valuation caps; term sheets; dilution
product management | business | roadmaps; user interviews; prioritisation frameworks; success metrics
remote work | workplace | async communication; time zones; home office setup; burnout
job interviews | careers | behavioural questions; salary negotiation; the STAR method; follow-up emails
public speaking | careers | stage fright; storytelling; slide design; pacing
time management | productivity | time blocking; the Pomodoro technique; prioritising tasks; procrastination
note taking | productivity | the Zettelkasten method; spaced repetition; mind maps; the Cornell method
learning Spanish | languages | verb conjugation; the subjunctive; listening practice; false friends
learning Japanese | languages | kanji; hiragana; keigo; pitch accent
the French Revolution | history | the Estates-General; the Reign of Terror; the Jacobins; Napoleon's rise
the Roman Empire | history | the legions; aqueducts; the Senate; the fall of the West
the Industrial Revolution | history | steam engines; textile mills; urbanisation; child labour
the Cold War | history | the arms race; proxy wars; the Berlin Wall; detente
ancient Egypt | history | the pyramids; hieroglyphs; the Nile floods; mummification
the Renaissance | art history | perspective drawing; patronage; humanism; fresco painting
impressionism | art history | plein air painting; brushwork; Monet's series; light and colour
jazz | music | improvisation; swing rhythm; chord extensions; big bands
learning guitar | music | barre chords; fingerpicking; strumming patterns; calluses
music production | music | compression; EQ; sidechaining; mixing levels
photography | hobbies | aperture; shutter speed; ISO; composition rules
chess | games | opening principles; pawn structure; endgames; tactics puzzles
board game design | games | playtesting; game balance; turn structure; victory conditions
film noir | film | chiaroscuro lighting; the femme fatale; voice-over; moral ambiguity
screenwriting | writing | three-act structure; subtext; scene headings; character arcs
poetry | writing | metre; enjambment; imagery; free verse
fantasy worldbuilding | writing | magic systems; maps; invented languages; political factions
climate change | environment | carbon budgets; feedback loops; sea level rise; adaptation
ocean plastics | environment | microplastics; ocean gyres; recycling rates; bioplastics
urban planning | cities | zoning; public transit; walkability; mixed-use development
bicycle commuting | transport | bike lanes; cargo bikes; commuter routes; bike maintenance
rail travel in Europe | travel | night trains; Interrail passes; seat reservations; high-speed lines
travelling in Japan | travel | the JR Pass; ryokan etiquette; IC cards; cherry blossom season
backpacking | travel | ultralight gear; water filters; trail permits; layering clothes
camping | outdoors | tent pitching; campfire safety; bear canisters; sleeping bag ratings
mountain hiking | outdoors | altitude sickness; route finding; weather windows; trekking poles
first aid | health | the recovery position; CPR; burns; sprains
child development | parenting | language milestones; screen time; sleep routines; tantrums
teenage motivation | parenting | autonomy; homework routines; social media; sleep schedules
studying for exams | education | active recall; practice tests; study schedules; exam anxiety
teaching fractions | education | common denominators; visual models; number lines; word problems
statistics | mathematics | p-values; confidence intervals; regression; sample size
linear algebra | mathematics | eigenvalues; matrix multiplication; vector spaces; determinants
probability | mathematics | conditional probability; Bayes' theorem; expected value; independence
prime numbers | mathematics | the sieve of Eratosthenes; twin primes; factorisation; RSA
machine learning | computing | overfitting; gradient descent; training data; feature engineering
large language models | computing | tokenisation; context windows; fine-tuning; hallucinations
databases | computing | indexes; normalisation; transactions; query plans
web performance | computing | caching; lazy loading; bundle size; the critical rendering path
Kubernetes | computing | pods; deployments; autoscaling; service meshes
Docker | computing | images; layers; volumes; multi-stage builds
Git | computing | rebasing; merge conflicts; branches; commit history
REST APIs | computing | status codes; pagination; idempotency; versioning
cybersecurity | computing | phishing; two-factor authentication; password managers; patching
home networking | computing | Wi-Fi channels; mesh routers; port forwarding; DNS
Linux | computing | file permissions; the package manager; systemd; shell scripts
Python | programming | list comprehensions; virtual environments; decorators; type hints
JavaScript | programming | promises; closures; the event loop; modules
TypeScript | programming | generics; union types; strict mode; type narrowing
Rust | programming | ownership; borrowing; lifetimes; traits
SQL | programming | joins; window functions; subqueries; indexes
regular expressions | programming | capture groups; lookaheads; greedy matching; character classes
unit testing | programming | mocks; test coverage; fixtures; flaky tests
spreadsheets | office software | pivot tables; VLOOKUP; conditional formatting; named ranges
email marketing | marketing | open rates; subject lines; segmentation; A/B tests
social media marketing | marketing | engagement rates; content calendars; hashtags; short videos
search engine optimisation | marketing | keywords; backlinks; page speed; meta descriptions
customer service | business | response times; escalation; refunds; tone of voice
negotiation | careers | anchoring; BATNA; concessions; active listening
leadership | workplace | delegation; feedback; one-on-ones; team culture
stoicism | philosophy | the dichotomy of control; Marcus Aurelius; virtue; negative visualisation
ethics of AI | philosophy | bias; transparency; accountability; privacy
the human brain | biology | neurons; neuroplasticity; the prefrontal cortex; dopamine
evolution | biology | natural selection; mutations; speciation; common ancestry
volcanoes | earth science | magma chambers; lava types; pyroclastic flows; eruption forecasting
earthquakes | earth science | fault lines; the Richter scale; aftershocks; seismic retrofitting
weather forecasting | earth science | pressure systems; weather models; humidity; cold fronts
coral reefs | environment | coral bleaching; symbiotic algae; reef fish; marine protected areas
bees | nature | pollination; hive structure; colony collapse; wild bees
birdwatching | nature | field guides; migration; bird calls; binoculars
woodworking | crafts | wood grain; joinery; hand planes; wood finishes
knitting | crafts | gauge; cable stitches; yarn weight; casting on
home renovation | home | load-bearing walls; permits; insulation; budgeting for surprises
interior design | home | colour palettes; lighting layers; rugs; small spaces
minimalism | lifestyle | decluttering; capsule wardrobes; digital minimalism; mindful spending
meditation | wellbeing | breath awareness; body scans; mindfulness apps; wandering thoughts
journaling | wellbeing | gratitude lists; morning pages; prompts; habit tracking
small business accounting | business | invoices; cash flow; bookkeeping software; quarterly taxes
contract basics | law | consideration; breach of contract; termination clauses; signatures
renting an apartment | housing | security deposits; lease terms; landlord repairs; inspections
moving to a new city | lifestyle | making friends; choosing a neighbourhood; moving costs; homesickness
wedding planning | events | guest lists; venues; budgets; seating charts
birthday parties for kids | events | party games; themes; invitations; goodie bags
`;

function parse(line: string): Topic {
  const [name, field, terms] = line.split("|").map((s) => s.trim());
  const list = (terms ?? "").split(";").map((s) => s.trim());
  if (name === undefined || field === undefined || list.length < 3)
    throw new Error(`bad topic line: ${line}`);
  return Object.freeze({ name, field, terms: Object.freeze(list) });
}

/** The English topics. */
export const TOPICS: readonly Topic[] = Object.freeze(
  LINES.split("\n")
    .filter((l) => l.trim() !== "")
    .map(parse),
);
