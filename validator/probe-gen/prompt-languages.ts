import { list } from "./random.js";

/*
 * Requests written in other languages than English (Spanish, French,
 * German, Portuguese, Italian): each phrasebook has its own topics,
 * requests, composable sentences for longer prompts, system prompts and
 * lines for earlier turns, so a non-English probe reads like a native
 * user's message rather than a translated template.
 */

/** Everything needed to write a conversation in one language. */
export interface Phrasebook {
  /** BCP 47 code. */
  readonly code: string;
  /** Topics, as nouns that fit the request patterns. */
  readonly topics: readonly string[];
  /** A request about topic `t`, with a number `n` (3 to 10) where it fits. */
  readonly requests: readonly ((t: string, n: number) => string)[];
  /** Requests that work on pasted text `x`. */
  readonly material: readonly ((x: string) => string)[];
  /** Sentences about `t`, for pasted text and long prompts. */
  readonly sentences: readonly ((t: string, n: number, who: string) => string)[];
  readonly systems: readonly string[];
  /** Openings of an earlier assistant answer. */
  readonly replies: readonly string[];
  /** Short follow-up questions of an earlier user turn. */
  readonly followUps: readonly string[];
  /** An assistant greeting that opens a chat. */
  readonly greeting: string;
  /** Article contractions the patterns produce ("de le" → "du"), applied to every text written. */
  readonly contractions: readonly (readonly [RegExp, string])[];
}

/** A phrasebook's text with its contractions applied. */
export function polish(pb: Phrasebook, text: string): string {
  let out = text;
  for (const [from, to] of pb.contractions) out = out.replace(from, to);
  return out;
}

const es: Phrasebook = {
  code: "es",
  greeting: "¡Hola! ¿En qué puedo ayudarte?",
  topics: list(`
    la energía solar; el cambio climático; la inteligencia artificial; la historia de Roma; el ahorro personal
    la cocina mediterránea; el aprendizaje de idiomas; el teletrabajo; la salud mental; el fútbol
    la fotografía; los volcanes; la economía doméstica; el cuidado de las plantas; los viajes en tren`),
  requests: [
    (t) => `¿Me puedes explicar qué es ${t}?`,
    (t, n) => `Dame ${n} datos curiosos sobre ${t}.`,
    (t) => `¿Cuáles son las ventajas y desventajas de ${t}?`,
    (t, n) => `Escribe un texto de unas ${n * 30} palabras sobre ${t}.`,
    (t) => `Hola, necesito ayuda con un trabajo sobre ${t}. ¿Por dónde empiezo?`,
    (t, n) => `Hazme un resumen de ${t} en ${n} frases.`,
    (t) => `Explícame ${t} como si tuviera diez años.`,
    (t, n) => `Escribe ${n} preguntas de examen sobre ${t}.`,
    (t) => `¿Qué errores comunes comete la gente con ${t}?`,
  ],
  material: [
    (x) => `Resume este texto en pocas líneas:\n\n${x}`,
    (x) => `Corrige la ortografía y la gramática de este texto:\n\n${x}`,
    (x) => `Traduce al inglés:\n\n${x}`,
  ],
  sentences: [
    (t, n) => `Según un estudio reciente, el ${n} por ciento de los encuestados sabe poco sobre ${t}.`,
    (t, _n, w) => `${w} me contó que ${t} le cambió la forma de ver las cosas.`,
    (t) => `Mucha gente cree que ${t} es complicado, pero no lo es tanto.`,
    (t, n) => `En los últimos ${n} años se ha hablado mucho de ${t}.`,
    (t) => `Lo más importante de ${t} es entender lo básico antes de avanzar.`,
    (t) => `No todo lo que se lee en internet sobre ${t} es cierto.`,
    (t, n) => `Hace ${n} meses empecé a interesarme por ${t} y todavía tengo dudas.`,
    (t) => `Hay muchos libros sobre ${t}, pero pocos son buenos para empezar.`,
    (t, _n, w) => `${w} trabaja con ${t} desde hace tiempo.`,
    (t, n) => `Un curso básico sobre ${t} dura unas ${n} semanas.`,
    (t) => `Cada país tiene su propia forma de entender ${t}.`,
    (t) => `Los expertos no siempre están de acuerdo sobre ${t}.`,
  ],
  systems: list(`
    Eres un asistente útil que responde siempre en español.
    Eres un profesor paciente. Responde con claridad y con ejemplos.
    Responde de forma breve y directa. Usa un tono amable.
    Eres un experto en redacción. Corrige y mejora los textos del usuario.`),
  replies: list(`¡Claro!; Buena pregunta.; Te lo explico brevemente.; Por supuesto, aquí tienes un resumen.`),
  followUps: list(`¿Puedes darme un ejemplo?; Más corto, por favor.; ¿Y eso por qué?; Gracias, ¿algo más?`),
  contractions: [
    [/\bde el\b/g, "del"],
    [/\ba el\b/g, "al"],
  ],
};

const fr: Phrasebook = {
  code: "fr",
  greeting: "Bonjour ! Comment puis-je vous aider ?",
  topics: list(`
    l'énergie solaire; le réchauffement climatique; l'intelligence artificielle; la Révolution française
    la cuisine lyonnaise; l'apprentissage de l'anglais; le télétravail; le sommeil; le cyclisme
    la photographie; les impôts; le jardinage; la philosophie; les voyages en train; la boulangerie`),
  requests: [
    (t) => `Tu peux m'expliquer ${t} simplement ?`,
    (t, n) => `Donne-moi ${n} faits intéressants sur ${t}.`,
    (t) => `Quels sont les avantages et les inconvénients de ${t} ?`,
    (t, n) => `Écris un court texte d'environ ${n * 30} mots sur ${t}.`,
    (t) => `Bonjour, je prépare un exposé sur ${t}. Tu aurais un plan à me proposer ?`,
    (t, n) => `Résume ${t} en ${n} phrases.`,
    (t) => `Explique-moi ${t} comme à un enfant de dix ans.`,
    (t, n) => `Propose ${n} questions de quiz sur ${t}.`,
    (t) => `Quelles sont les idées reçues les plus courantes sur ${t} ?`,
  ],
  material: [
    (x) => `Résume ce texte en quelques lignes :\n\n${x}`,
    (x) => `Corrige les fautes de ce texte :\n\n${x}`,
    (x) => `Traduis en anglais :\n\n${x}`,
  ],
  sentences: [
    (t, n) => `D'après une enquête récente, ${n} % des personnes interrogées connaissent mal ${t}.`,
    (t, _n, w) => `${w} m'a dit que ${t} avait changé sa façon de travailler.`,
    (t) => `Beaucoup pensent que ${t} est compliqué, alors que ce n'est pas le cas.`,
    (t, n) => `Depuis ${n} ans, on parle de plus en plus de ${t}.`,
    (t) => `Le plus important avec ${t}, c'est de bien comprendre les bases.`,
    (t) => `Tout ce qu'on lit sur ${t} en ligne n'est pas forcément vrai.`,
    (t, n) => `Il y a ${n} mois, j'ai commencé à m'intéresser à ${t}.`,
    (t) => `Il existe beaucoup de livres sur ${t}, mais peu sont adaptés aux débutants.`,
    (t, _n, w) => `${w} travaille sur ${t} depuis longtemps.`,
    (t, n) => `Une formation de base sur ${t} dure environ ${n} semaines.`,
    (t) => `Chaque pays a sa propre manière d'aborder ${t}.`,
    (t) => `Les experts ne sont pas toujours d'accord sur ${t}.`,
  ],
  systems: list(`
    Tu es un assistant serviable qui répond toujours en français.
    Tu es un professeur patient. Réponds clairement, avec des exemples.
    Réponds de façon concise et polie.
    Tu es un correcteur professionnel. Améliore les textes de l'utilisateur.`),
  replies: list(`Bien sûr !; Bonne question.; Voici une explication rapide.; Avec plaisir, voici un résumé.`),
  followUps: list(
    `Tu peux donner un exemple ?; Plus court, s'il te plaît.; Pourquoi ?; Merci ! Et ensuite ?`,
  ),
  contractions: [
    [/\bde le\b/g, "du"],
    [/\bde les\b/g, "des"],
    // "à" is not a word character for \b: match it after a space.
    [/(^|\s)à le\b/g, "$1au"],
    [/(^|\s)à les\b/g, "$1aux"],
  ],
};

const de: Phrasebook = {
  code: "de",
  greeting: "Hallo! Wie kann ich dir helfen?",
  topics: list(`
    Solarenergie; den Klimawandel; künstliche Intelligenz; die Geschichte Berlins; das Sparen
    die italienische Küche; das Sprachenlernen; Homeoffice; gesunden Schlaf; den Radverkehr
    die Fotografie; die Steuererklärung; den Gemüsegarten; die Philosophie Kants; Bahnreisen`),
  requests: [
    (t) => `Kannst du mir ${t} einfach erklären?`,
    (t, n) => `Nenne mir ${n} interessante Fakten über ${t}.`,
    (t) => `Was spricht dafür und was dagegen, wenn es um ${t} geht?`,
    (t, n) => `Schreib einen kurzen Text mit etwa ${n * 30} Wörtern über ${t}.`,
    (t) => `Hallo, ich muss ein Referat über ${t} halten. Hast du eine Gliederung für mich?`,
    (t, n) => `Fasse das Wichtigste über ${t} in ${n} Sätzen zusammen.`,
    (t) => `Erklär mir ${t}, als wäre ich zehn Jahre alt.`,
    (t, n) => `Erstelle ${n} Quizfragen über ${t}.`,
    (t) => `Welche typischen Missverständnisse gibt es über ${t}?`,
  ],
  material: [
    (x) => `Fasse diesen Text kurz zusammen:\n\n${x}`,
    (x) => `Korrigiere bitte Rechtschreibung und Grammatik:\n\n${x}`,
    (x) => `Übersetze ins Englische:\n\n${x}`,
  ],
  sentences: [
    (t, n) => `Laut einer aktuellen Umfrage wissen ${n} Prozent der Befragten wenig über ${t}.`,
    (t, _n, w) => `Laut ${w} lohnt es sich, über ${t} nachzudenken.`,
    (t) => `Viele halten ${t} für kompliziert, dabei ist es gar nicht so schwer.`,
    (t, n) => `Seit ${n} Jahren wird immer mehr über ${t} gesprochen.`,
    (t) => `Wer sich für ${t} interessiert, sollte zuerst die Grundlagen verstehen.`,
    (t) => `Nicht alles, was man online über ${t} liest, stimmt auch.`,
    (t, n) => `Vor ${n} Monaten habe ich angefangen, mich für ${t} zu interessieren.`,
    (t) => `Es gibt viele Bücher über ${t}, aber nur wenige eignen sich für Anfänger.`,
    (t, _n, w) => `${w} kennt sich gut aus, wenn es um ${t} geht.`,
    (t, n) => `Ein Grundkurs über ${t} dauert ungefähr ${n} Wochen.`,
    (t) => `Jedes Land sieht ${t} ein bisschen anders.`,
    (t) => `Auch Fachleute sind sich über ${t} nicht immer einig.`,
  ],
  systems: list(`
    Du bist ein hilfsbereiter Assistent und antwortest immer auf Deutsch.
    Du bist ein geduldiger Lehrer. Antworte klar und mit Beispielen.
    Antworte kurz und freundlich.
    Du bist ein erfahrener Lektor. Verbessere die Texte des Nutzers.`),
  replies: list(`Gern!; Gute Frage.; Hier eine kurze Erklärung.; Klar, hier ist eine Zusammenfassung.`),
  followUps: list(`Kannst du ein Beispiel geben?; Bitte kürzer.; Warum eigentlich?; Danke! Und weiter?`),
  // The topics are written in the accusative and every pattern puts them there.
  contractions: [],
};

const pt: Phrasebook = {
  code: "pt",
  greeting: "Olá! Como posso ajudar?",
  topics: list(`
    a energia solar; as mudanças climáticas; a inteligência artificial; a história do Brasil; a poupança
    a culinária portuguesa; o aprendizado de inglês; o trabalho remoto; a saúde mental; o futebol
    a fotografia; os impostos; a jardinagem; a filosofia; as viagens de comboio`),
  requests: [
    (t) => `Você pode me explicar ${t} de forma simples?`,
    (t, n) => `Me dê ${n} curiosidades sobre ${t}.`,
    (t) => `Quais são as vantagens e desvantagens de ${t}?`,
    (t, n) => `Escreva um texto de umas ${n * 30} palavras sobre ${t}.`,
    (t) => `Oi, preciso fazer um trabalho sobre ${t}. Por onde começo?`,
    (t, n) => `Resuma ${t} em ${n} frases.`,
    (t) => `Explique ${t} como se eu tivesse dez anos.`,
    (t, n) => `Crie ${n} perguntas de prova sobre ${t}.`,
    (t) => `Quais são os erros mais comuns sobre ${t}?`,
  ],
  material: [
    (x) => `Resuma este texto em poucas linhas:\n\n${x}`,
    (x) => `Corrija a ortografia e a gramática deste texto:\n\n${x}`,
    (x) => `Traduza para o inglês:\n\n${x}`,
  ],
  sentences: [
    (t, n) => `Segundo uma pesquisa recente, ${n} por cento das pessoas sabem pouco sobre ${t}.`,
    (t, _n, w) => `${w} me contou que ${t} mudou a sua forma de trabalhar.`,
    (t) => `Muita gente acha que ${t} é complicado, mas não é bem assim.`,
    (t, n) => `Nos últimos ${n} anos fala-se cada vez mais sobre ${t}.`,
    (t) => `O mais importante em ${t} é entender o básico primeiro.`,
    (t) => `Nem tudo o que se lê na internet sobre ${t} é verdade.`,
    (t, n) => `Há ${n} meses comecei a me interessar por ${t}.`,
    (t) => `Existem muitos livros sobre ${t}, mas poucos servem para iniciantes.`,
    (t, _n, w) => `${w} trabalha com ${t} há bastante tempo.`,
    (t, n) => `Um curso básico sobre ${t} dura cerca de ${n} semanas.`,
    (t) => `Cada país tem a sua maneira de ver ${t}.`,
    (t) => `Nem os especialistas concordam sempre sobre ${t}.`,
  ],
  systems: list(`
    Você é um assistente prestativo que sempre responde em português.
    Você é um professor paciente. Responda com clareza e exemplos.
    Responda de forma curta e simpática.
    Você é um revisor experiente. Melhore os textos do usuário.`),
  replies: list(`Claro!; Boa pergunta.; Vou explicar rapidamente.; Com certeza, aqui vai um resumo.`),
  followUps: list(`Pode dar um exemplo?; Mais curto, por favor.; Por quê?; Obrigado! E depois?`),
  contractions: [
    [/\bem o\b/g, "no"],
    [/\bem a\b/g, "na"],
    [/\bem os\b/g, "nos"],
    [/\bem as\b/g, "nas"],
    [/\bde o\b/g, "do"],
    [/\bde a\b/g, "da"],
    [/\bde os\b/g, "dos"],
    [/\bde as\b/g, "das"],
    [/\bpor o\b/g, "pelo"],
    [/\bpor a\b/g, "pela"],
    [/\bpor os\b/g, "pelos"],
    [/\bpor as\b/g, "pelas"],
  ],
};

const it: Phrasebook = {
  code: "it",
  greeting: "Ciao! Come posso aiutarti?",
  topics: list(`
    l'energia solare; il cambiamento climatico; l'intelligenza artificiale; la storia di Roma; il risparmio
    la cucina toscana; lo studio delle lingue; lo smart working; il sonno; il ciclismo
    la fotografia; le tasse; l'orto; la filosofia greca; i viaggi in treno`),
  requests: [
    (t) => `Mi spieghi ${t} in modo semplice?`,
    (t, n) => `Dammi ${n} curiosità su ${t}.`,
    (t) => `Quali sono i pro e i contro di ${t}?`,
    (t, n) => `Scrivi un breve testo di circa ${n * 30} parole su ${t}.`,
    (t) => `Ciao, devo preparare una presentazione su ${t}. Mi aiuti con la scaletta?`,
    (t, n) => `Riassumi ${t} in ${n} frasi.`,
    (t) => `Spiegami ${t} come se avessi dieci anni.`,
    (t, n) => `Prepara ${n} domande a scelta multipla su ${t}.`,
    (t) => `Quali sono i luoghi comuni più diffusi su ${t}?`,
  ],
  material: [
    (x) => `Riassumi questo testo in poche righe:\n\n${x}`,
    (x) => `Correggi gli errori di questo testo:\n\n${x}`,
    (x) => `Traduci in inglese:\n\n${x}`,
  ],
  sentences: [
    (t, n) => `Secondo un sondaggio recente, il ${n} per cento degli intervistati conosce poco ${t}.`,
    (t, _n, w) => `${w} mi ha raccontato che ${t} ha cambiato il suo modo di lavorare.`,
    (t) => `Molti pensano che ${t} sia complicato, ma non è così.`,
    (t, n) => `Negli ultimi ${n} anni si parla sempre di più di ${t}.`,
    (t) => `La cosa più importante con ${t} è capire bene le basi.`,
    (t) => `Non tutto quello che si legge online su ${t} è vero.`,
    (t, n) => `${n} mesi fa ho iniziato a interessarmi a ${t}.`,
    (t) => `Ci sono molti libri su ${t}, ma pochi sono adatti ai principianti.`,
    (t, _n, w) => `${w} si occupa di ${t} da molto tempo.`,
    (t, n) => `Un corso base su ${t} dura circa ${n} settimane.`,
    (t) => `Ogni paese ha il suo modo di vedere ${t}.`,
    (t) => `Nemmeno gli esperti sono sempre d'accordo su ${t}.`,
  ],
  systems: list(`
    Sei un assistente disponibile che risponde sempre in italiano.
    Sei un insegnante paziente. Rispondi con chiarezza e con esempi.
    Rispondi in modo breve e cordiale.
    Sei un correttore di bozze esperto. Migliora i testi dell'utente.`),
  replies: list(`Certo!; Bella domanda.; Ti spiego in breve.; Ecco un riassunto.`),
  followUps: list(`Mi fai un esempio?; Più breve, per favore.; Perché?; Grazie! E poi?`),
  contractions: [
    [/\bsu il\b/g, "sul"],
    [/\bsu lo\b/g, "sullo"],
    [/\bsu la\b/g, "sulla"],
    [/\bsu l'/g, "sull'"],
    [/\bsu i\b/g, "sui"],
    [/\bsu le\b/g, "sulle"],
    [/\bdi il\b/g, "del"],
    [/\bdi lo\b/g, "dello"],
    [/\bdi la\b/g, "della"],
    [/\bdi l'/g, "dell'"],
    [/\bdi i\b/g, "dei"],
    [/\bdi le\b/g, "delle"],
    [/\ba il\b/g, "al"],
    [/\ba lo\b/g, "allo"],
    [/\ba la\b/g, "alla"],
    [/\ba l'/g, "all'"],
    [/\ba i\b/g, "ai"],
    [/\ba le\b/g, "alle"],
  ],
};

/** The non-English phrasebooks. */
export const PHRASEBOOKS: readonly Phrasebook[] = Object.freeze([es, fr, de, pt, it]);
