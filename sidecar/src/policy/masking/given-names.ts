/*
 * Common given names (lower case), so that "Alice Smith" inside a longer text can be told from
 * "Widget Pro" or "New York". A name followed by a capitalised word is taken for a person. Names that
 * are also ordinary English words (Will, May, Mark, Grace, Rose, Bill, Frank, Joy, Hope, Art, Guy,
 * June, April, ...) are left out: they would flag "May Day" or "Grace Period".
 */
const NAMES = `
aaron abigail abraham adam adrian agnes ahmed aisha alan albert alejandro alex alexander alexandra
alexis alfred alice alicia alison allison amanda amber amelia amir amy ana andrea andrew angela anita
ann anna anne annie anthony antonio arjun arthur ashley audrey barbara beatrice ben benjamin bernard
beth betty beverly bob bobby bonnie brandon brenda brian brittany bruce bryan caleb camila carl carla
carlos carmen carol caroline carolyn catherine charles charlie charlotte chen cheryl chloe chris
christian christina christine christopher cindy claire clara claude colin connor craig cynthia daniel
danielle david deborah debra denise dennis derek diana diane diego dmitri dolores donald donna doris
dorothy douglas dylan edward elaine eleanor elena elijah elizabeth ella ellen emily emma eric erica
erik ethan eugene evelyn fatima felix fernando fiona francesca francesco francis francisco gabriel
gabriela gary george georgia gerald gloria gregory hannah harold harry heather helen henry hiroshi
howard hugo ian igor irene isaac isabel isabella jacob james jamie jane janet janice jasmine jason
javier jean jeffrey jennifer jeremy jerry jesse jessica jill joan joanna joe john johnny jonathan
jorge jose joseph joshua juan judith judy julia julian julie justin karen karl kate katherine kathleen
kathryn kathy katie keith kelly kenneth kevin kim kimberly kyle larry laura lauren lawrence leah leo
leon liam lily linda lisa lorenzo louis lucas lucia lucy luis luke madison manuel margaret maria
marie marilyn mario marta martha martin mary matthew maya megan melissa mia michael michelle miguel
mohamed mohammed muhammad nancy natalie nathan nicholas nicole noah nora oliver olivia omar oscar
pablo pamela patricia patrick paul paula peter philip priya rachel rafael rahul ralph randy raymond
rebecca richard rita robert roberto robin roger ronald ruth ryan sally samantha samuel sandra sara
sarah scott sean sergei sharon shirley sofia sophia sophie stephanie stephen steven susan sven
tatiana teresa thomas timothy tina todd tom tyler valerie vanessa victor victoria vincent virginia
walter wei william yuki yusuf zachary zoe
`;

export const GIVEN_NAMES: ReadonlySet<string> = new Set(NAMES.split(/\s+/).filter(Boolean));
